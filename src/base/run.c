#include "base/run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_pair(int p[2])
{
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
}

/* Both pipes are polled together: a program may print before it has read all of its
 * input, and one that never reads must not block us past the deadline. */
static bool pump(const struct vs_run *r, int64_t deadline, pid_t pid, int in, int rfd,
		 struct vs_run_result *res)
{
	size_t off = 0, cap = 0;
	if (in >= 0)
		fcntl(in, F_SETFL, O_NONBLOCK);
	while (in >= 0 || rfd >= 0) {
		int wait_ms = -1;
		if (deadline) {
			int64_t left = deadline - now_ms();
			if (left <= 0) {
				res->timed_out = true;
				break;
			}
			wait_ms = (int)left;
		}
		struct pollfd p[2];
		nfds_t n = 0;
		int ri = -1, wi = -1;
		if (rfd >= 0)
			ri = (int)n, p[n++] = (struct pollfd){.fd = rfd, .events = POLLIN};
		if (in >= 0)
			wi = (int)n, p[n++] = (struct pollfd){.fd = in, .events = POLLOUT};
		int k = poll(p, n, wait_ms);
		if (k < 0 && errno != EINTR)
			break;
		if (k <= 0)
			continue;
		if (wi >= 0 && p[wi].revents) {
			ssize_t w = write(in, r->in + off, r->in_len - off);
			if (w > 0)
				off += (size_t)w;
			/* it closed its stdin: its exit status tells whether that mattered */
			if (w < 0 && errno != EAGAIN && errno != EINTR)
				off = r->in_len;
			if (off == r->in_len)
				close(in), in = -1;
		}
		if (ri >= 0 && p[ri].revents) {
			if (res->out_len + 1 >= cap) {
				if (cap >= r->max_out + 1) {
					res->too_big = true;
					break;
				}
				size_t nc = cap ? cap * 2 : 4096;
				if (nc > r->max_out + 1)
					nc = r->max_out + 1;
				char *nb = realloc(res->out, nc);
				if (!nb)
					break;
				res->out = nb, cap = nc;
			}
			ssize_t got = read(rfd, res->out + res->out_len, cap - res->out_len - 1);
			if (got > 0)
				res->out_len += (size_t)got;
			else if (got == 0 || (errno != EINTR && errno != EAGAIN))
				close(rfd), rfd = -1;
		}
	}
	/* a deadline, too much output or an error of ours: it does not finish on its own */
	bool killed = in >= 0 || rfd >= 0;
	if (killed)
		kill(pid, SIGKILL);
	if (in >= 0)
		close(in);
	if (rfd >= 0)
		close(rfd);
	return killed;
}

/* Its pipes are closed but it may still run: the deadline holds until it exits. */
static void wait_deadline(pid_t pid, int64_t deadline, struct vs_run_result *res)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	while (pidfd >= 0) {
		int64_t left = deadline - now_ms();
		struct pollfd p = {.fd = pidfd, .events = POLLIN};
		int k = left > 0 ? poll(&p, 1, (int)left) : 0;
		if (k < 0 && errno == EINTR)
			continue;
		if (k == 0) {
			res->timed_out = true;
			kill(pid, SIGKILL);
		}
		break;
	}
	if (pidfd >= 0)
		close(pidfd);
}

int vs_run(const struct vs_run *r, struct vs_run_result *res, vs_err_t *err)
{
	*res = (struct vs_run_result){0};
	int inp[2] = {-1, -1}, outp[2] = {-1, -1};
	if (pipe2(inp, O_CLOEXEC) < 0 || (r->max_out && pipe2(outp, O_CLOEXEC) < 0)) {
		int e = errno;
		close_pair(inp);
		return vs_err(err, e, "`%s`: pipe", r->path);
	}
	/* a program that does not read all of its stdin must not kill us */
	signal(SIGPIPE, SIG_IGN);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close_pair(inp);
		close_pair(outp);
		return vs_err(err, e, "`%s`: fork", r->path);
	}
	if (pid == 0) {
		/* the helper gets the signals a program expects, whatever its caller blocked or
		 * ignored (an ignored SIGPIPE would survive the exec) */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		if (dup2(inp[0], 0) < 0 || (outp[1] >= 0 && dup2(outp[1], 1) < 0))
			_exit(VS_RUN_EXEC_FAILED);
		char *default_argv[] = {(char *)r->path, NULL};
		char *empty_env[] = {NULL};
		execve(r->path, r->argv ? r->argv : default_argv, r->envp ? r->envp : empty_env);
		_exit(VS_RUN_EXEC_FAILED);
	}
	close(inp[0]);
	if (outp[1] >= 0)
		close(outp[1]);
	if (!r->in_len)
		close(inp[1]), inp[1] = -1;
	int64_t deadline = r->timeout_s ? now_ms() + (int64_t)r->timeout_s * 1000 : 0;
	if (!pump(r, deadline, pid, inp[1], outp[0], res) && deadline)
		wait_deadline(pid, deadline, res);
	if (r->max_out && !res->out)
		res->out = malloc(1);
	if (res->out)
		res->out[res->out_len] = '\0';
	while (waitpid(pid, &res->status, 0) < 0)
		if (errno != EINTR) {
			int e = errno;
			free(res->out), res->out = NULL;
			return vs_err(err, e, "`%s`: wait", r->path);
		}
	if (r->max_out && !res->out)
		return vs_err(err, ENOMEM, "`%s`: output", r->path);
	return 0;
}
