#include "oci/hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for pid, killing it after timeout_s seconds (0: no limit). */
static int wait_hook(pid_t pid, int timeout_s, int *status, bool *timed_out)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int64_t deadline = timeout_s ? now_ms() + (int64_t)timeout_s * 1000 : 0;
	*timed_out = false;
	while (pidfd >= 0) {
		int wait_ms = -1;
		if (deadline) {
			int64_t left = deadline - now_ms();
			wait_ms = left > 0 ? (int)left : 0;
		}
		struct pollfd p = {.fd = pidfd, .events = POLLIN};
		int r = poll(&p, 1, wait_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			*timed_out = true;
			kill(pid, SIGKILL);
		}
		break;
	}
	if (pidfd >= 0)
		close(pidfd);
	while (waitpid(pid, status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

static int run_one(const struct spec_hook *h, const char *name, const char *state_text,
		   vs_err_t *err)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return vs_err(err, errno, "%s: pipe", name);
	pid_t pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return vs_err(err, errno, "%s: fork", name);
	}
	if (pid == 0) {
		dup2(pipefd[0], 0);
		char *default_args[] = {(char *)h->path, NULL};
		char *empty_env[] = {NULL};
		execve(h->path, h->args ? h->args : default_args, h->env ? h->env : empty_env);
		_exit(127);
	}
	close(pipefd[0]);
	/* a hook that does not read its stdin must not make us fail or block */
	signal(SIGPIPE, SIG_IGN);
	vs_write_all(pipefd[1], state_text, strlen(state_text), NULL);
	close(pipefd[1]);
	int status = 0;
	bool timed_out = false;
	if (wait_hook(pid, h->timeout, &status, &timed_out) < 0)
		return vs_err(err, errno, "%s: wait for `%s`", name, h->path);
	if (timed_out)
		return vs_err(err, 0, "%s: `%s` timed out after %d s", name, h->path, h->timeout);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return vs_err(err, 0, "%s: `%s` could not be run (exit status 127)", name,
			      h->path);
	if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		return vs_err(err, 0, "%s: `%s` failed with exit status %d", name, h->path,
			      WEXITSTATUS(status));
	if (WIFSIGNALED(status))
		return vs_err(err, 0, "%s: `%s` was killed by signal %d", name, h->path,
			      WTERMSIG(status));
	return 0;
}

/* The spec: once the container runs (poststart) or is gone (poststop), a failing hook
 * is a warning and the remaining hooks of the phase still run. */
static bool keeps_going(enum spec_hook_kind kind)
{
	return kind == HOOK_POSTSTART || kind == HOOK_POSTSTOP;
}

int hooks_run(const struct spec_hooks *hooks, enum spec_hook_kind kind, json_t *state,
	      vs_err_t *err)
{
	if (!hooks->n[kind])
		return 0;
	cleanup_free char *text = json_dumps(state, JSON_COMPACT);
	if (!text)
		return vs_err(err, ENOMEM, "hooks");
	for (size_t i = 0; i < hooks->n[kind]; i++) {
		char name[64];
		snprintf(name, sizeof(name), "hooks.%s[%zu]", spec_hook_kind_name(kind), i);
		vs_debug("running %s: %s", name, hooks->list[kind][i].path);
		if (!keeps_going(kind)) {
			if (run_one(&hooks->list[kind][i], name, text, err) < 0)
				return -1;
			continue;
		}
		cleanup_err vs_err_t failed = NULL;
		if (run_one(&hooks->list[kind][i], name, text, &failed) < 0)
			vs_warn("%s", failed->msg);
	}
	return 0;
}

int hooks_run_json(json_t *hooks_json, enum spec_hook_kind kind, json_t *state, vs_err_t *err)
{
	if (!json_is_object(hooks_json))
		return 0;
	struct spec_hooks h = {0};
	int rc = spec_parse_hooks(hooks_json, "hooks", &h, err);
	if (rc == 0)
		rc = hooks_run(&h, kind, state, err);
	spec_hooks_release(&h);
	return rc;
}
