#include "network/plugin.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "network/cni_result.h"

#define MAX_OUTPUT (1 << 20)

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void child(const char *path, const struct cni_call *c, int in, int out)
{
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0)
		_exit(127);
	char e[6][4096];
	snprintf(e[0], sizeof(e[0]), "CNI_COMMAND=%s", c->command);
	snprintf(e[1], sizeof(e[1]), "CNI_CONTAINERID=%s", c->container_id);
	snprintf(e[2], sizeof(e[2]), "CNI_NETNS=%s", c->netns ? c->netns : "");
	snprintf(e[3], sizeof(e[3]), "CNI_IFNAME=%s", c->ifname);
	snprintf(e[4], sizeof(e[4]), "CNI_PATH=%s", CNI_PLUGIN_DIR);
	snprintf(e[5], sizeof(e[5]), "CNI_ARGS=%s", c->args ? c->args : "");
	/* the plugins call iptables, ip and tc by name */
	char *envp[] = {e[0], e[1], e[2], e[3], e[4], e[5],
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL};
	char *argv[] = {(char *)path, NULL};
	execve(path, argv, envp);
	_exit(127);
}

int cni_plugin_run(const char *type, const struct cni_call *c, const char *config, char **out,
		   size_t *out_len, vs_err_t *err)
{
	char path[4096];
	if (strchr(type, '/') || !*type)
		return vs_err(err, 0, "plugin `%s`: not a plugin name", type);
	snprintf(path, sizeof(path), "%s/%s", CNI_PLUGIN_DIR, type);
	if (access(path, X_OK) < 0)
		return vs_err(err, errno, "plugin %s: %s", type, path);
	int inp[2], outp[2];
	if (pipe2(inp, O_CLOEXEC) < 0)
		return vs_err(err, errno, "plugin %s: pipe", type);
	if (pipe2(outp, O_CLOEXEC) < 0) {
		close(inp[0]), close(inp[1]);
		return vs_err(err, errno, "plugin %s: pipe", type);
	}
	pid_t pid = fork();
	if (pid < 0) {
		close(inp[0]), close(inp[1]), close(outp[0]), close(outp[1]);
		return vs_err(err, errno, "plugin %s: fork", type);
	}
	if (pid == 0)
		child(path, c, inp[0], outp[1]);
	close(inp[0]);
	close(outp[1]);

	/* both ends polled: a plugin may print before it has read all of its config */
	size_t cfg_len = strlen(config), cfg_off = 0, len = 0, cap = 4096;
	char *buf = malloc(cap);
	int in = inp[1], rfd = outp[0], rc = -1, status = 0;
	bool timed_out = false, too_big = false;
	long long deadline = now_ms() + CNI_TIMEOUT_S * 1000LL;
	fcntl(in, F_SETFL, O_NONBLOCK);
	while (rfd >= 0 && buf) {
		struct pollfd p[2] = {{.fd = rfd, .events = POLLIN}, {.fd = in, .events = POLLOUT}};
		long long left = deadline - now_ms();
		if (left <= 0) {
			timed_out = true;
			kill(pid, SIGKILL);
			break;
		}
		int r = poll(p, in >= 0 ? 2 : 1, (int)left);
		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0)
			continue;
		if (in >= 0 && (p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t w = write(in, config + cfg_off, cfg_len - cfg_off);
			if (w > 0)
				cfg_off += (size_t)w;
			if (w < 0 && errno != EAGAIN && errno != EINTR)
				cfg_off = cfg_len; /* it closed stdin: its exit status tells */
			if (cfg_off == cfg_len)
				close(in), in = -1;
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			if (len + 1 >= cap) {
				if (cap >= MAX_OUTPUT) {
					too_big = true;
					kill(pid, SIGKILL);
					break;
				}
				char *nb = realloc(buf, cap * 2);
				if (!nb)
					break;
				buf = nb, cap *= 2;
			}
			ssize_t n = read(rfd, buf + len, cap - len - 1);
			if (n > 0)
				len += (size_t)n;
			else if (n == 0 || (errno != EINTR && errno != EAGAIN))
				close(rfd), rfd = -1;
		}
	}
	if (rfd >= 0 && !timed_out && !too_big)
		kill(pid, SIGKILL); /* the loop broke on an error of ours */
	if (in >= 0)
		close(in);
	if (rfd >= 0)
		close(rfd);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!buf)
		return vs_err(err, ENOMEM, "plugin %s: output", type);
	buf[len] = '\0';
	if (timed_out)
		vs_err(err, 0, "plugin %s: %s timed out after %d s", type, c->command, CNI_TIMEOUT_S);
	else if (too_big)
		vs_err(err, 0, "plugin %s: more than %d bytes of output", type, MAX_OUTPUT);
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char line[512];
		cni_error_line(buf, len, line, sizeof(line));
		if (WIFSIGNALED(status))
			vs_err(err, 0, "plugin %s: %s killed by signal %d", type, c->command,
			       WTERMSIG(status));
		else
			vs_err(err, 0, "plugin %s: %s failed: %s", type, c->command, line);
	} else {
		rc = 0;
		*out = buf;
		*out_len = len;
		buf = NULL;
	}
	free(buf);
	return rc;
}
