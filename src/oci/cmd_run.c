/* run: create + start + wait, with the container's exit status as ours. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "oci/create_args.h"
#include "oci/hooks.h"
#include "oci/launch.h"
#include "oci/lifecycle.h"
#include "oci/oci.h"
#include "oci/sync.h"

/* The init closes its end of the sync socket when execve succeeds (close-on-exec);
 * a failed exec sends its error first. */
static int wait_exec(struct launch *l, vs_err_t *err)
{
	char buf[4097];
	ssize_t n;
	while ((n = recv(l->sync_fd, buf, sizeof(buf) - 1, 0)) < 0)
		if (errno != EINTR)
			return vs_err(err, errno, "wait for the container process to start");
	if (n == 0)
		return 0;
	buf[n] = '\0';
	return vs_err(err, 0, "%s", buf[0] == SYNC_ERROR ? buf + 1 : "unexpected message");
}

static void poststart(struct launch *l)
{
	if (!l->spec->hooks.n[HOOK_POSTSTART])
		return;
	json_t *s = state_to_oci_json(&l->st, STATUS_RUNNING);
	vs_err_t herr = NULL;
	if (hooks_run(&l->spec->hooks, HOOK_POSTSTART, s, &herr) < 0) {
		vs_warn("%s", herr->msg);
		vs_err_free(&herr);
	}
	json_decref(s);
}

static const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH,
				SIGCONT, SIGTSTP, SIGTTIN, SIGTTOU};

/* Forwards signals to the container until its init exits; returns the status. */
static int wait_forwarding(pid_t pid, int sfd, vs_err_t *err)
{
	for (;;) {
		struct signalfd_siginfo si;
		ssize_t n = read(sfd, &si, sizeof(si));
		if (n < 0 && errno == EINTR)
			continue;
		if (n != sizeof(si))
			return vs_err(err, errno, "read signalfd");
		if ((int)si.ssi_signo != SIGCHLD) {
			kill(pid, (int)si.ssi_signo);
			continue;
		}
		int status;
		pid_t r;
		/* hooks and other children of ours may end too: only the init counts */
		while ((r = waitpid(-1, &status, WNOHANG)) > 0)
			if (r == pid)
				return WIFEXITED(status) ? WEXITSTATUS(status)
							 : 128 + WTERMSIG(status);
	}
}

int oci_cmd_run(const struct vs_globals *g, int argc, char **argv, vs_err_t *err)
{
	struct create_args a;
	int rc = create_args_parse("run", argc, argv, &a, err);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	struct launch l;
	if (launch_container(g, &a.o, &l, err) < 0) {
		launch_release(&l);
		return -1;
	}
	/* kill, state and friends must work on us while we wait */
	state_unlock(&l.st);

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (size_t i = 0; i < ARRAY_SIZE(forwarded); i++)
		sigaddset(&set, forwarded[i]);
	int sfd = -1;
	if (!a.detach) {
		sigprocmask(SIG_BLOCK, &set, NULL);
		sfd = signalfd(-1, &set, SFD_CLOEXEC);
		if (sfd < 0) {
			vs_err(err, errno, "signalfd");
			goto fail;
		}
	}
	if (sync_send(l.sync_fd, SYNC_START, err) < 0 || wait_exec(&l, err) < 0)
		goto fail;
	poststart(&l);
	if (a.detach) {
		launch_release(&l);
		return 0;
	}
	int status = wait_forwarding(l.pid, sfd, err);
	close(sfd);
	if (status < 0) {
		launch_release(&l);
		return -1;
	}
	l.pid = 0;
	if (!a.keep) {
		vs_err_t derr = NULL;
		if (state_lock(&l.st, &derr) < 0 || lifecycle_destroy(&l.st, &derr) < 0) {
			vs_warn("%s", derr->msg);
			vs_err_free(&derr);
		}
	}
	launch_release(&l);
	return status;
fail:
	if (sfd >= 0)
		close(sfd);
	launch_abort(&l);
	launch_release(&l);
	return -1;
}
