/* The runtime is vessel itself, run as a child: the engine stays a thin layer over the
 * same create/start/delete the OCI tests cover. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/json.h"
#include "base/util.h"
#include "engine/internal.h"

static pid_t spawn(const struct vs_globals *g, char **argv, int out_fd, int err_fd, vs_err_t *err)
{
	size_t n = 0;
	while (argv[n])
		n++;
	char **full = calloc(n + 4, sizeof(*full));
	if (!full)
		return vs_err(err, ENOMEM, "runtime");
	size_t k = 0;
	full[k++] = "vessel";
	if (g->root) {
		full[k++] = "--root";
		full[k++] = (char *)g->root;
	}
	memcpy(full + k, argv, n * sizeof(*full));
	pid_t pid = fork();
	if (pid < 0) {
		free(full);
		return vs_err(err, errno, "runtime %s: fork", argv[0]);
	}
	if (pid == 0) {
		if (out_fd >= 0)
			dup2(out_fd, 1);
		if (err_fd >= 0)
			dup2(err_fd, 2);
		execv("/proc/self/exe", full);
		_exit(127);
	}
	free(full);
	return pid;
}

static int wait_child(pid_t pid, const char *what, vs_err_t *err)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return vs_err(err, errno, "runtime %s: wait", what);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int engine_runtime(const struct vs_globals *g, char **argv, int out_fd, vs_err_t *err)
{
	pid_t pid = spawn(g, argv, out_fd, out_fd, err);
	if (pid < 0)
		return -1;
	return wait_child(pid, argv[0], err);
}

static volatile sig_atomic_t pending;

static void note_signal(int sig)
{
	pending = sig;
}

int engine_runtime_forward(const struct vs_globals *g, char **argv, vs_err_t *err)
{
	/* a handler, not SIG_IGN: the runtime, after its exec, gets the default again */
	struct sigaction sa = {.sa_handler = note_signal}, old[3];
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &sa, &old[i]);
	pid_t pid = spawn(g, argv, -1, -1, err);
	int st = 0, rc = -1;
	while (pid > 0) {
		if (pending) {
			/* the runtime passes it on to the container and returns when it ends */
			kill(pid, pending);
			pending = 0;
		}
		if (waitpid(pid, &st, 0) == pid) {
			rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			break;
		}
		if (errno != EINTR) {
			rc = vs_err(err, errno, "runtime %s: wait", argv[0]);
			break;
		}
	}
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &old[i], NULL);
	return rc;
}

int engine_stdin_null(vs_err_t *err)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd == 0) /* ours was closed */
		return fcntl(0, F_SETFD, 0) < 0 ? vs_err(err, errno, "/dev/null as stdin") : 0;
	if (fd < 0 || dup2(fd, 0) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return vs_err(err, e, "/dev/null as stdin");
	}
	close(fd);
	return 0;
}

char *engine_runtime_status(const struct vs_globals *g, const char *id)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return NULL;
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	char *argv[] = {"state", (char *)id, NULL};
	pid_t pid = spawn(g, argv, p[1], devnull, NULL);
	close(p[1]);
	if (devnull >= 0)
		close(devnull);
	if (pid < 0) {
		close(p[0]);
		return NULL;
	}
	char buf[16384];
	size_t len = 0;
	ssize_t r;
	while (len < sizeof(buf) - 1 && (r = read(p[0], buf + len, sizeof(buf) - 1 - len)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		len += (size_t)r;
	}
	close(p[0]);
	int rc = wait_child(pid, "state", NULL);
	if (rc != 0)
		return NULL;
	json_t *st = json_loadb(buf, len, 0, NULL);
	const char *s = json_string_value(json_object_get(st, "status"));
	char *out = s ? strdup(s) : NULL;
	json_decref(st);
	return out;
}
