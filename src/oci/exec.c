#include "oci/exec.h"

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
#include "base/util.h"
#include "oci/cgroup.h"
#include "oci/console.h"
#include "oci/nsenter.h"
#include "oci/process.h"
#include "oci/seccomp.h"
#include "oci/state.h"
#include "oci/sync.h"
#include "oci/tty.h"
#include "oci/waitloop.h"

/* user first: it owns the others; mount last, so the paths opened before are the host's */
static const enum spec_ns_type join_order[] = {NS_USER, NS_IPC, NS_UTS, NS_NET,
					       NS_CGROUP, NS_TIME, NS_MNT};

struct exec_child {
	const struct exec_opts *o;
	const struct seccomp_prog *seccomp;
	struct cgroup *cg;
	int ns_fd[NS_COUNT];
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
	for (size_t i = 0; i < ARRAY_SIZE(join_order); i++) {
		enum spec_ns_type t = join_order[i];
		if (c->ns_fd[t] >= 0 && setns(c->ns_fd[t], spec_ns_clone_flag(t)) < 0)
			return vs_err(err, errno, "join the container's %s namespace",
				      spec_ns_name(t));
	}
	if (p->terminal) {
		if (console_setup(c->console_fd, p, false, err) < 0)
			return -1;
		close(c->console_fd);
	}
	if (process_set_rlimits(p, err) < 0)
		return -1;
	if (c->seccomp && !p->no_new_privileges && seccomp_install(c->seccomp, err) < 0)
		return vs_err_wrap(err, "linux.seccomp");
	bool deny_setgroups = false;
	cleanup_free char *sg = NULL;
	if (vs_read_file("/proc/self/setgroups", 64, &sg, NULL, NULL) == 0)
		deny_setgroups = strncmp(sg, "deny", 4) == 0;
	if (process_set_identity(p, !deny_setgroups, err) < 0)
		return -1;
	umask(p->user.has_umask ? p->user.umask : 022);
	if (chdir(p->cwd) < 0)
		return vs_err(err, errno, "cwd: chdir `%s`", p->cwd);
	if (process_prepare_fds(c->o->preserve_fds, err) < 0)
		return -1;
	if (p->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return vs_err(err, errno, "noNewPrivileges");
	if (c->seccomp && p->no_new_privileges && seccomp_install(c->seccomp, err) < 0)
		return vs_err_wrap(err, "linux.seccomp");
	return process_exec(p, err);
}

static int open_namespaces(const struct spec *s, pid_t pid, int ns_fd[NS_COUNT],
			   int *pid_ns_fd, vs_err_t *err)
{
	static const char *const proc_names[NS_COUNT] = {
		[NS_PID] = "pid",   [NS_NET] = "net",	 [NS_MNT] = "mnt",	 [NS_IPC] = "ipc",
		[NS_UTS] = "uts",   [NS_USER] = "user", [NS_CGROUP] = "cgroup", [NS_TIME] = "time",
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
			return vs_err(err, errno, "open the container's %s namespace", proc_names[t]);
		if (t == NS_PID)
			*pid_ns_fd = fd;
		else
			ns_fd[t] = fd;
	}
	return 0;
}

int exec_in_container(const struct vs_globals *g, const struct exec_opts *o, vs_err_t *err)
{
	struct container_state st;
	struct spec *s = NULL;
	struct cgroup *cg = NULL;
	struct seccomp_prog *prog = NULL;
	int ns_fd[NS_COUNT], pid_ns_fd = -1, own_pid_ns = -1, sv[2] = {-1, -1}, console_fd = -1;
	struct tty_proxy *tty = NULL;
	int ret = -1;
	for (int t = 0; t < NS_COUNT; t++)
		ns_fd[t] = -1;

	if (state_load(g, o->id, false, &st, err) < 0)
		goto out;
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
	if (open_namespaces(s, st.pid, ns_fd, &pid_ns_fd, err) < 0)
		goto out;
	if (o->process->terminal) {
		if (o->console_socket)
			console_fd = console_connect(o->console_socket, err);
		else
			console_fd = tty_proxy_socket(&tty, err);
		if (console_fd < 0)
			goto out;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		vs_err(err, errno, "socketpair");
		goto out;
	}
	/* a pid namespace is entered by the parent: it applies to the children made next,
	 * and only to that one (later children of ours, say a sanitizer's helper, stay ours) */
	if (pid_ns_fd >= 0 && ns_enter_pid_for_child(pid_ns_fd, &own_pid_ns, err) < 0)
		goto out;
	fflush(NULL);
	struct clone_args ca = {.exit_signal = SIGCHLD};
	pid_t pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
	int clone_errno = errno;
	if (pid != 0 && ns_restore_pid_for_children(&own_pid_ns, err) < 0) {
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		goto out;
	}
	if (pid < 0) {
		vs_err(err, clone_errno, "clone");
		goto out;
	}
	if (pid == 0) {
		close(sv[0]);
		struct exec_child c = {.o = o, .seccomp = prog, .sync_fd = sv[1],
				       .console_fd = console_fd, .cg = cg};
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
	if ( sync_send(sv[0], SYNC_GO, err) < 0 ||
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
	if (own_pid_ns >= 0)
		close(own_pid_ns);
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
