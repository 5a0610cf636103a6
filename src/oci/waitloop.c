#include "oci/waitloop.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/signals.h"
#include "base/util.h"
#include "oci/sync.h"
#include "oci/tty.h"

int waitloop_exec_result(int sync_fd, vs_err_t *err)
{
	char buf[4097];
	ssize_t n;
	while ((n = recv(sync_fd, buf, sizeof(buf) - 1, 0)) < 0)
		if (errno != EINTR)
			return vs_err(err, errno, "wait for the container process to start");
	if (n == 0)
		return 0;
	buf[n] = '\0';
	return vs_err(err, 0, "%s", buf[0] == SYNC_ERROR ? buf + 1 : "unexpected message");
}

static sigset_t forwarded_set(void)
{
	sigset_t set;
	vs_forwarded_signals(&set);
	sigaddset(&set, SIGCHLD);
	/* a resize for the terminal we proxy; without one, the process's own */
	sigaddset(&set, SIGWINCH);
	return set;
}

void waitloop_block_signals(void)
{
	sigset_t set = forwarded_set();
	sigprocmask(SIG_BLOCK, &set, NULL);
}

static int reap(pid_t pid, bool *done)
{
	int status;
	pid_t r;
	/* hooks and other children of ours may end too: only pid counts */
	while ((r = waitpid(-1, &status, WNOHANG)) > 0) {
		if (r == pid) {
			*done = true;
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
	}
	return 0;
}

int waitloop_forward(pid_t pid, struct tty_proxy *tty, vs_err_t *err)
{
	sigset_t set = forwarded_set();
	sigprocmask(SIG_BLOCK, &set, NULL);
	cleanup_close int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0)
		return vs_err(err, errno, "signalfd");
	if (tty && tty_proxy_receive(tty, err) < 0)
		return -1;
	bool in_open = tty != NULL, master_open = tty != NULL, done = false;
	int status = 0;
	/* a child that already exited sent its SIGCHLD before we blocked it */
	status = reap(pid, &done);
	while (!done) {
		struct pollfd p[3] = {{.fd = sfd, .events = POLLIN},
				      {.fd = in_open ? 0 : -1, .events = POLLIN},
				      {.fd = master_open ? tty_proxy_master(tty) : -1,
				       .events = POLLIN}};
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			return vs_err(err, errno, "poll");
		}
		if (p[2].revents)
			master_open = tty_proxy_pump(tty, tty_proxy_master(tty));
		if (p[1].revents)
			in_open = tty_proxy_pump(tty, 0);
		if (!p[0].revents)
			continue;
		struct signalfd_siginfo si;
		if (read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		int sig = (int)si.ssi_signo;
		if (sig == SIGCHLD)
			status = reap(pid, &done);
		else if (sig == SIGWINCH && tty)
			tty_proxy_resize(tty);
		else
			kill(pid, sig);
	}
	/* what the process wrote just before it ended */
	while (master_open) {
		struct pollfd p = {.fd = tty_proxy_master(tty), .events = POLLIN};
		if (poll(&p, 1, 50) <= 0)
			break;
		master_open = tty_proxy_pump(tty, tty_proxy_master(tty));
	}
	return status;
}

int waitloop_write_pid_file(const char *path, pid_t pid, vs_err_t *err)
{
	cleanup_free char *tmp = NULL;
	if (asprintf(&tmp, "%s.tmp.%d", path, getpid()) < 0)
		return vs_err(err, ENOMEM, "--pid-file");
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d", pid);
	if (vs_write_file(tmp, buf, (size_t)n, err) < 0)
		return vs_err_wrap(err, "--pid-file");
	if (rename(tmp, path) < 0) {
		unlink(tmp);
		return vs_err(err, errno, "--pid-file: rename to `%s`", path);
	}
	return 0;
}
