#include "oci/exec.h"
#include "vmc/vmc.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/pty.h"
#include "base/util.h"
#include "oci/rootless.h"
#include "sandbox/sandbox.h"
#include "oci/console.h"
#include "oci/process.h"
#include "oci/seccomp.h"
#include "oci/seccomp_listener.h"
#include "oci/selfexe.h"
#include "oci/state.h"
#include "oci/sync.h"
#include "oci/tty.h"
#include "oci/waitloop.h"

struct exec_child {
	const struct exec_opts *o;
	const struct seccomp_prog *seccomp;
	struct cgroup *cg;
	int ns_fd[NS_COUNT];
	int root_fd; /* the init's root when it shares our mount namespace, or -1 */
	int sync_fd;
	int console_fd;
};

static int exec_child_steps(const struct exec_child *c, vs_err_t *err)
{
	const struct spec_process *p = c->o->process;
	if (sync_expect(c->sync_fd, SYNC_GO, err) < 0)
		return -1;
	/* still host root here, before any setns: join the cgroup ourselves (cheap) */
	if (c->cg && cgroup_enter_self(c->cg, false, err) < 0)
		return -1;
	if (process_join_namespaces(c->ns_fd, err) < 0)
		return -1;
	/* a container in the runtime's mount namespace has its rootfs by chroot only */
	if (c->root_fd >= 0 && (fchdir(c->root_fd) < 0 || chroot(".") < 0))
		return vs_err(err, errno, "enter the container's root");
	if (p->terminal) {
		if (console_setup(c->console_fd, p, false, err) < 0)
			return -1;
		close(c->console_fd);
	} else if (setpgid(0, 0) < 0) {
		/* its own process group, as in runc and crun: the runtime's is not in the
		 * container (it reads as pgid 0 there), and a signal to the group stays inside */
		return vs_err(err, errno, "setpgid");
	}
	struct process_run run = {.p = p,
				  .seccomp = c->seccomp,
				  .preserve_fds = c->o->preserve_fds,
				  .sync_fd = c->sync_fd};
	if (process_setup(&run, err) < 0)
		return -1;
	return process_finish(&run, err);
}

static int open_namespaces(const struct spec *s, pid_t pid, int ns_fd[NS_COUNT], int *pid_ns_fd,
			   vs_err_t *err)
{
	static const char *const proc_names[NS_COUNT] = {
	    [NS_PID] = "pid", [NS_NET] = "net",	  [NS_MNT] = "mnt",	  [NS_IPC] = "ipc",
	    [NS_UTS] = "uts", [NS_USER] = "user", [NS_CGROUP] = "cgroup", [NS_TIME] = "time",
	};
	for (int t = 0; t < NS_COUNT; t++)
		ns_fd[t] = -1;
	*pid_ns_fd = -1;
	for (int t = 0; t < NS_COUNT; t++) {
		if (!s->ns[t].enabled)
			continue;
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, proc_names[t]);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return vs_err(err, errno, "open the container's %s namespace",
				      proc_names[t]);
		if (t == NS_PID)
			*pid_ns_fd = fd;
		else
			ns_fd[t] = fd;
	}
	return 0;
}

static int forward_listener(const struct spec *s, const struct seccomp_prog *prog,
			    const struct container_state *st, int sync_fd, pid_t pid, vs_err_t *err)
{
	if (!seccomp_prog_notifies(prog))
		return 0;
	json_t *state = state_to_oci_json(st, STATUS_RUNNING);
	int rc = state ? seccomp_listener_forward(s->seccomp, sync_fd, state, pid, err)
		       : vs_err(err, ENOMEM, "state");
	json_decref(state);
	return rc;
}

int exec_in_container(const struct vs_globals *g, const struct exec_opts *o, vs_err_t *err)
{
	struct container_state st;
	struct spec *s = NULL;
	struct cgroup *cg = NULL;
	struct seccomp_prog *prog = NULL;
	int ns_fd[NS_COUNT], pid_ns_fd = -1, sv[2] = {-1, -1}, console_fd = -1;
	int root_fd = -1;
	struct tty_proxy *tty = NULL;
	int ret = -1;
	for (int t = 0; t < NS_COUNT; t++)
		ns_fd[t] = -1;

	if (state_load(g, o->id, false, &st, err) < 0)
		goto out;
	if (vmc_is_vm(&st)) {
		vmc_unsupported(&st, "exec", err);
		goto out;
	}
	enum container_status status = state_status(&st);
	if (status == STATUS_STOPPED || status == STATUS_CREATING) {
		vs_err(err, 0, "cannot exec in container `%s`: container not running", o->id);
		goto out;
	}
	if (status == STATUS_PAUSED) {
		vs_err(err, 0, "cannot exec in container `%s`: it is paused", o->id);
		goto out;
	}
	/* the container's own config: which namespaces to join, which seccomp profile */
	if (spec_load(st.bundle, &s, err) < 0)
		goto out;
	if (s->seccomp && seccomp_compile(s->seccomp, &prog, err) < 0)
		goto out;
	if (st.cgroup && cgroup_from_json(st.cgroup, &cg, err) < 0)
		goto out;
	selfexe_settle();
	if (open_namespaces(s, st.pid, ns_fd, &pid_ns_fd, err) < 0)
		goto out;
	if (!s->ns[NS_MNT].enabled) {
		char root[64];
		snprintf(root, sizeof(root), "/proc/%d/root", st.pid);
		root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (root_fd < 0) {
			vs_err(err, errno, "open the container's root");
			goto out;
		}
	}
	if (o->process->terminal) {
		if (o->console_socket)
			console_fd = vs_console_connect(o->console_socket, err);
		else
			console_fd = tty_proxy_socket(&tty, err);
		if (console_fd < 0)
			goto out;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		vs_err(err, errno, "socketpair");
		goto out;
	}
	fflush(NULL);
	struct clone_args ca = {.exit_signal = SIGCHLD};
	pid_t pid = ns_clone_in_pid_ns(&ca, pid_ns_fd, ns_fd[NS_USER], rootless(), err);
	if (pid < 0)
		goto out;
	if (pid == 0) {
		close(sv[0]);
		struct exec_child c = {.o = o,
				       .seccomp = prog,
				       .sync_fd = sv[1],
				       .console_fd = console_fd,
				       .cg = cg,
				       .root_fd = root_fd};
		memcpy(c.ns_fd, ns_fd, sizeof(ns_fd));
		vs_err_t cerr = NULL;
		exec_child_steps(&c, &cerr);
		sync_send_error(sv[1], cerr ? cerr->msg : "exec failed");
		_exit(127);
	}
	close(sv[1]);
	sv[1] = -1;
	if (console_fd >= 0 && tty) {
		close(console_fd);
		console_fd = -1;
	}
	if (sync_send(sv[0], SYNC_GO, err) < 0 ||
	    forward_listener(s, prog, &st, sv[0], pid, err) < 0 ||
	    waitloop_exec_result(sv[0], err) < 0) {
		sync_prefer_init_error(sv[0], err);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		goto out;
	}
	if (o->pid_file && waitloop_write_pid_file(o->pid_file, pid, err) < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		goto out;
	}
	if (o->detach) {
		ret = 0;
		goto out;
	}
	ret = waitloop_forward(pid, tty, err);
out:
	for (int t = 0; t < NS_COUNT; t++)
		if (ns_fd[t] >= 0)
			close(ns_fd[t]);
	if (pid_ns_fd >= 0)
		close(pid_ns_fd);
	if (root_fd >= 0)
		close(root_fd);
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	if (console_fd >= 0)
		close(console_fd);
	tty_proxy_free(tty);
	seccomp_prog_free(prog);
	cgroup_free(cg);
	spec_free(s);
	state_release(&st);
	return ret;
}
