#include "oci/init.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "sandbox/sandbox.h"
#include "oci/console.h"
#include "oci/hooks.h"
#include "oci/mounts.h"
#include "oci/process.h"
#include "oci/seccomp.h"
#include "oci/sync.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* linux.namespaces entries with a path: opened all first, then joined in process's order */
static int join_namespaces(const struct spec *s, vs_err_t *err)
{
	int fd[NS_COUNT];
	int rc = 0;
	for (int t = 0; t < NS_COUNT; t++)
		fd[t] = -1;
	for (int t = 0; t < NS_COUNT && rc == 0; t++) {
		if (t == NS_PID || !s->ns[t].enabled || !s->ns[t].path)
			continue;
		fd[t] = open(s->ns[t].path, O_RDONLY | O_CLOEXEC);
		if (fd[t] < 0)
			rc = vs_err(err, errno, "linux.namespaces: open %s namespace `%s`",
				    spec_ns_name(t), s->ns[t].path);
	}
	if (rc == 0)
		rc = process_join_namespaces(fd, err);
	for (int t = 0; t < NS_COUNT; t++)
		if (fd[t] >= 0)
			close(fd[t]);
	return rc;
}

static bool maps_root(const struct spec_id_mapping *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (m[i].container_id == 0)
			return true;
	return false;
}

static int new_time_namespace(const struct spec *s, vs_err_t *err)
{
	if (unshare(CLONE_NEWTIME) < 0)
		return vs_err(err, errno, "unshare the time namespace");
	for (size_t i = 0; i < s->n_time_offsets; i++) {
		char line[96];
		int n = snprintf(line, sizeof(line), "%d %lld %u\n", s->time_offsets[i].clock,
				 (long long)s->time_offsets[i].secs, s->time_offsets[i].nanosecs);
		if (vs_write_file("/proc/self/timens_offsets", line, (size_t)n, err) < 0)
			return vs_err_wrap(err, "linux.timeOffsets");
	}
	return 0;
}

/* Through the host's /proc opened before the rootfs: the container may have no /proc of
 * its own (no mount namespace, or none mounted); a sysctl acts on the writer's
 * namespaces whichever proc instance it goes through. */
static int set_sysctls(const struct spec *s, int hostproc, vs_err_t *err)
{
	for (size_t i = 0; i < s->n_sysctls; i++) {
		char path[512];
		int n = snprintf(path, sizeof(path), "sys/%s", s->sysctls[i].key);
		if (n < 0 || n >= (int)sizeof(path))
			return vs_err(err, ENAMETOOLONG, "linux.sysctl.%s", s->sysctls[i].key);
		for (char *p = path + 4; *p; p++)
			if (*p == '.')
				*p = '/';
		if (vs_write_file_at(hostproc, path, s->sysctls[i].value,
				     strlen(s->sysctls[i].value), err) < 0)
			return vs_err_wrap(err, "linux.sysctl.%s", s->sysctls[i].key);
	}
	return 0;
}

static pid_t host_pid(int hostproc)
{
	char buf[32];
	ssize_t n = readlinkat(hostproc, "self", buf, sizeof(buf) - 1);
	if (n <= 0)
		return getpid();
	buf[n] = '\0';
	return (pid_t)atoi(buf);
}

static int run_hooks_here(const struct init_ctx *c, enum spec_hook_kind kind, const char *status,
			  int hostproc, vs_err_t *err)
{
	if (!c->s->hooks.n[kind])
		return 0;
	json_t *st = launch_hook_state(c->o->id, c->o->bundle, c->s->annotations, status,
				       host_pid(hostproc));
	int rc = hooks_run(&c->s->hooks, kind, st, err);
	json_decref(st);
	return rc;
}

/* Blocks until `vessel start` opens the fifo's other end (or, for run, the runtime
 * says start). The fifo is reached through the host's /proc, opened before pivot_root,
 * so the container needs no /proc of its own. Our end stays open, close-on-exec: start
 * sees EOF when execve succeeds, which is when poststart hooks may run; a failure before
 * that is written to the fifo for start to report. */
static int start_fifo = -1;

static int wait_for_start(const struct init_ctx *c, int hostproc, vs_err_t *err)
{
	if (c->fifo_fd < 0)
		return sync_expect(c->sync_fd, SYNC_START, err);
	char path[64];
	snprintf(path, sizeof(path), "self/fd/%d", c->fifo_fd);
	int fd;
	while ((fd = openat(hostproc, path, O_WRONLY | O_CLOEXEC)) < 0)
		if (errno != EINTR)
			return vs_err(err, errno, "open the exec fifo");
	close(c->fifo_fd);
	start_fifo = fd;
	return vs_write_all(fd, "0", 1, err);
}

/* after READY the runtime of `create` is gone: only our stderr can tell */
static bool ready_sent;

static int init_steps(const struct init_ctx *c, vs_err_t *err)
{
	const struct spec *s = c->s;
	const struct spec_process *p = &s->process;
	bool new_userns = s->ns[NS_USER].enabled && !s->ns[NS_USER].path;
	bool in_userns = s->ns[NS_USER].enabled;

	/* In a mount namespace of its own and no new user namespace, what the init does up to
	 * its rootfs needs nothing from the runtime (no id maps) and leaves nothing behind
	 * that outlives it: it builds the rootfs while the runtime records its pid, and waits
	 * for GO after. */
	bool early = !new_userns && s->ns[NS_MNT].enabled && !s->ns[NS_MNT].path;

	umask(0);
	/* until create has finished, a crash of the runtime takes the init with it */
	if (sync_die_with_runtime(c->sync_fd, err) < 0 ||
	    (!early && sync_expect(c->sync_fd, SYNC_GO, err) < 0))
		return -1;
	if (c->join_cgroup && cgroup_enter_self((struct cgroup *)c->cg, c->born_in_v2, err) < 0)
		return -1;
	if (new_userns && maps_root(s->uid_mappings, s->n_uid_mappings) &&
	    maps_root(s->gid_mappings, s->n_gid_mappings)) {
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
			return vs_err(err, errno, "become root in the user namespace");
		if (sync_die_with_runtime(c->sync_fd, err) < 0)
			return -1;
	}
	if (join_namespaces(s, err) < 0)
		return -1;
	if (s->ns[NS_TIME].enabled && !s->ns[NS_TIME].path && new_time_namespace(s, err) < 0)
		return -1;
	cleanup_close int hostproc = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (hostproc < 0)
		return vs_err(err, errno, "open /proc");

	/* When the runtime moves us (we are in a new user namespace and cannot), that waits
	 * for an RCU grace period (see cgroup_enter_self): the rootfs is built meanwhile. */
	if (rootfs_prepare(s, c->cg, in_userns, c->bind_sources, err) < 0)
		return -1;
	if (early && sync_expect(c->sync_fd, SYNC_GO, err) < 0)
		return -1;
	if (!c->join_cgroup && sync_expect(c->sync_fd, SYNC_CGROUP, err) < 0)
		return -1;
	/* after the runtime moved us into our cgroup, so that it becomes the ns root */
	if (s->ns[NS_CGROUP].enabled && !s->ns[NS_CGROUP].path && unshare(CLONE_NEWCGROUP) < 0)
		return vs_err(err, errno, "unshare the cgroup namespace");
	if (c->hooks_round && (sync_send(c->sync_fd, SYNC_HOOKS, err) < 0 ||
			       sync_expect(c->sync_fd, SYNC_HOOKS_DONE, err) < 0))
		return -1;
	if (run_hooks_here(c, HOOK_CREATE_CONTAINER, "created", hostproc, err) < 0)
		return -1;
	if (rootfs_pivot(s, c->o->no_pivot, err) < 0)
		return -1;
	if (p->terminal) {
		if (console_setup(c->console_fd, p, s->ns[NS_MNT].enabled, err) < 0)
			return -1;
		close(c->console_fd);
	} else if (setsid() < 0) {
		return vs_err(err, errno, "setsid");
	}
	if (s->hostname && sethostname(s->hostname, strlen(s->hostname)) < 0)
		return vs_err(err, errno, "hostname: sethostname `%s`", s->hostname);
	if (s->domainname && setdomainname(s->domainname, strlen(s->domainname)) < 0)
		return vs_err(err, errno, "domainname: setdomainname `%s`", s->domainname);
	/* after the uts names, so kernel.hostname and kernel.domainname win as in runc; before
	 * readonlyPaths makes /proc/sys read-only */
	if (set_sysctls(s, hostproc, err) < 0)
		return -1;
	if (rootfs_finish(s, err) < 0)
		return -1;
	if (s->personality >= 0 && personality((unsigned long)s->personality) < 0)
		return vs_err(err, errno, "linux.personality");
	if (placement_apply_mempolicy(&s->mempolicy, err) < 0)
		return -1;
	/* the user's filter may forbid prctl, and setuid disarms the signal anyway: from here
	 * to COMMIT the init is never long away from the sync socket, whose end tells */
	sync_outlive_runtime();
	struct process_run run = {.p = p, .seccomp = c->seccomp,
				  .preserve_fds = c->o->preserve_fds, .sync_fd = c->sync_fd};
	if (process_setup(&run, err) < 0)
		return -1;
	if (sync_send(c->sync_fd, SYNC_READY, err) < 0 ||
	    sync_expect(c->sync_fd, SYNC_COMMIT, err) < 0)
		return -1;
	ready_sent = true;
	if (wait_for_start(c, hostproc, err) < 0)
		return -1;
	if (run_hooks_here(c, HOOK_START_CONTAINER, "created", hostproc, err) < 0)
		return -1;
	close(hostproc);
	hostproc = -1;
	return process_finish(&run, err);
}

_Noreturn void init_run(const struct init_ctx *c)
{
	vs_err_t err = NULL;
	init_steps(c, &err);
	const char *msg = err ? err->msg : "container init failed";
	sync_send_error(c->sync_fd, msg);
	if (start_fifo >= 0)
		vs_write_all(start_fifo, msg, strlen(msg), NULL);
	else if (ready_sent && c->fifo_fd >= 0)
		dprintf(2, "vessel: %s\n", msg);
	_exit(127);
}
