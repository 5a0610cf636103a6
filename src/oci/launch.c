#include "oci/launch.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/proc.h"
#include "base/pty.h"
#include "base/util.h"
#include "oci/console.h"
#include "oci/hooks.h"
#include "oci/idmap.h"
#include "oci/init.h"
#include "oci/mounts.h"
#include "oci/oom_score.h"
#include "oci/rootless.h"
#include "oci/seccomp.h"
#include "oci/seccomp_listener.h"
#include "oci/selfexe.h"
#include "oci/sync.h"
#include "oci/waitloop.h"
#include "sandbox/sandbox.h"

json_t *launch_hook_state(const char *id, const char *bundle, json_t *annotations,
			  const char *status, pid_t pid)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:s}", "ociVersion", "1.2.0", "id", id,
			      "status", status, "pid", (json_int_t)pid, "bundle", bundle);
	if (j)
		json_object_set_new(j, "annotations",
				    annotations ? json_incref(annotations) : json_object());
	return j;
}

static void rfc3339_now(char *buf, size_t n)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + k, n - k, ".%09ldZ", ts.tv_nsec);
}

static int clone_flags(const struct spec *s)
{
	int flags = 0;
	/* cgroup and time namespaces are made by the init itself, after it joined its
	 * cgroup and before anything reads the clocks */
	static const enum spec_ns_type at_clone[] = {NS_USER, NS_PID, NS_NET,
						     NS_MNT,  NS_IPC, NS_UTS};
	for (size_t i = 0; i < ARRAY_SIZE(at_clone); i++)
		if (s->ns[at_clone[i]].enabled && !s->ns[at_clone[i]].path)
			flags |= spec_ns_clone_flag(at_clone[i]);
	return flags;
}

/* A pid namespace given by path: the init is cloned into it (see nsenter.h). */
static int open_pid_namespace(const struct spec *s, vs_err_t *err)
{
	if (!s->ns[NS_PID].enabled || !s->ns[NS_PID].path)
		return -2;
	int fd = open(s->ns[NS_PID].path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vs_err(err, errno, "linux.namespaces: open pid namespace `%s`",
			      s->ns[NS_PID].path);
	return fd;
}

/* The spec's "created" is "after step 2" of the lifecycle, the environment made: the
 * hooks of steps 3 to 5 see it, as crun's do. */
static int runtime_hooks(struct launch *l, const struct launch_opts *o, vs_err_t *err)
{
	json_t *st = launch_hook_state(o->id, o->bundle, l->spec->annotations, "created", l->pid);
	int rc = hooks_run(&l->spec->hooks, HOOK_PRESTART, st, err);
	if (rc == 0)
		rc = hooks_run(&l->spec->hooks, HOOK_CREATE_RUNTIME, st, err);
	json_decref(st);
	return rc;
}

/* The init was born in its new network namespace, or joins the one at the path. */
static int move_net_devices(const struct spec *s, pid_t pid, vs_err_t *err)
{
	char own[64];
	snprintf(own, sizeof(own), "/proc/%d/ns/net", pid);
	const char *path = s->ns[NS_NET].path ? s->ns[NS_NET].path : own;
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vs_err(err, errno, "linux.netDevices: open the network namespace `%s`",
			      path);
	return netdev_move_all(s->net_devices, s->n_net_devices, fd, err);
}

static int spawn_init(struct launch *l, const struct launch_opts *o,
		      const struct seccomp_prog *prog, vs_err_t *err)
{
	const struct spec *s = l->spec;
	selfexe_settle();
	cleanup_close int fifo_fd = -1;
	if (o->use_fifo) {
		/* 0622 whatever our umask: an init that dropped to another user still opens
		 * it for writing */
		if (mkfifoat(l->st.dir_fd, STATE_EXEC_FIFO, 0622) < 0 ||
		    fchmodat(l->st.dir_fd, STATE_EXEC_FIFO, 0622, 0) < 0)
			return vs_err(err, errno, "mkfifo `%s/%s`", l->st.dir, STATE_EXEC_FIFO);
		fifo_fd = openat(l->st.dir_fd, STATE_EXEC_FIFO, O_PATH | O_CLOEXEC);
		if (fifo_fd < 0)
			return vs_err(err, errno, "open the exec fifo");
	}
	cleanup_close int console_fd = -1;
	if (s->process.terminal) {
		if (o->console_fd >= 0)
			console_fd = dup(o->console_fd);
		else if (!o->console_socket)
			return vs_err(err, 0,
				      "process.terminal is true: --console-socket is needed "
				      "to receive the pty");
		else
			console_fd = vs_console_connect(o->console_socket, err);
		if (console_fd < 0)
			return err && *err ? -1 : vs_err(err, errno, "console");
	}
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return vs_err(err, errno, "socketpair");
	cleanup_close int pid_ns = open_pid_namespace(s, err);
	if (pid_ns == -1) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	/* born in its cgroup2 directory, the init joins its v1 cgroups itself: both without
	 * the kernel's threadgroup lock (see cgroup_enter_self). In a new user namespace the
	 * init has no rights on the host's cgroup files: then we move it. */
	bool self_join = !(s->ns[NS_USER].enabled && !s->ns[NS_USER].path);
	int *bind_sources = NULL;
	if ((!self_join || rootfs_has_idmapped(s)) &&
	    rootfs_open_bind_sources(s, &bind_sources, err) < 0) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	cleanup_close int v2fd = cgroup_v2_dir_fd(l->cg);
	struct clone_args ca = {.flags = (uint64_t)clone_flags(s), .exit_signal = SIGCHLD};
	if (v2fd >= 0) {
		ca.flags |= CLONE_INTO_CGROUP;
		ca.cgroup = (uint64_t)v2fd;
	}
	fflush(NULL);
	vs_err_t first = NULL;
	pid_t pid = ns_clone_in_pid_ns(&ca, pid_ns, -1, rootless(), &first);
	if (pid < 0 && v2fd >= 0) {
		/* a kernel or cgroup that refuses it: clone plainly and move the init later */
		ca.flags &= ~(uint64_t)CLONE_INTO_CGROUP;
		ca.cgroup = 0;
		close(v2fd);
		v2fd = -1;
		vs_err_free(&first);
		pid = ns_clone_in_pid_ns(&ca, pid_ns, -1, rootless(), &first);
	}
	if (pid != 0)
		rootfs_close_bind_sources(bind_sources, s->n_mounts);
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		if (err)
			*err = first;
		else
			vs_err_free(&first);
		return vs_err_wrap(err, "clone the container init into its namespaces");
	}
	vs_err_free(&first);
	if (pid == 0) {
		close(sv[0]);
		/* the state lock lives on this open file: the init must not keep it held */
		close(l->st.dir_fd);
		struct init_ctx c = {
		    .s = s,
		    .o = o,
		    .cg = l->cg,
		    .seccomp = prog,
		    .sync_fd = sv[1],
		    .fifo_fd = fifo_fd,
		    .console_fd = console_fd,
		    .bind_sources = bind_sources,
		    .hooks_round = s->hooks.n[HOOK_PRESTART] || s->hooks.n[HOOK_CREATE_RUNTIME],
		    .join_cgroup = self_join,
		    .born_in_v2 = v2fd >= 0,
		};
		init_run(&c);
	}
	close(sv[1]);
	l->pid = pid;
	l->sync_fd = sv[0];
	/* before the init does anything: a delete after our crash must find it */
	l->st.pid = pid;
	l->st.start_time = proc_start_time(pid);
	if (state_save(&l->st, err) < 0)
		goto fail;

	if (s->ns[NS_USER].enabled && !s->ns[NS_USER].path &&
	    idmap_write_userns(pid, s->uid_mappings, s->n_uid_mappings, s->gid_mappings,
			       s->n_gid_mappings, err) < 0)
		goto fail;
	if (s->n_net_devices && move_net_devices(s, pid, err) < 0)
		goto fail;
	int oom_score;
	if (s->process.has_oom_score_adj &&
	    oom_score_apply(pid, s->process.oom_score_adj, &oom_score, err) < 0) {
		vs_err_wrap(err, "process.oomScoreAdj");
		goto fail;
	}
	/* the init builds its rootfs while we move it into its cgroup */
	if (sync_send(l->sync_fd, SYNC_GO, err) < 0)
		goto fail;
	if (!self_join &&
	    (cgroup_enter(l->cg, pid, err) < 0 || sync_send(l->sync_fd, SYNC_CGROUP, err) < 0))
		goto fail;
	if ((s->hooks.n[HOOK_PRESTART] || s->hooks.n[HOOK_CREATE_RUNTIME]) &&
	    (sync_expect(l->sync_fd, SYNC_HOOKS, err) < 0 || runtime_hooks(l, o, err) < 0 ||
	     sync_send(l->sync_fd, SYNC_HOOKS_DONE, err) < 0))
		goto fail;
	if (seccomp_prog_notifies(prog)) {
		json_t *st = launch_hook_state(o->id, o->bundle, s->annotations, "creating", pid);
		int rc = st ? seccomp_listener_forward(s->seccomp, l->sync_fd, st, pid, err)
			    : vs_err(err, ENOMEM, "state");
		json_decref(st);
		if (rc < 0)
			goto fail;
	}
	if (sync_expect(l->sync_fd, SYNC_READY, err) < 0)
		goto fail;
	return 0;
fail:
	sync_prefer_init_error(l->sync_fd, err);
	return -1;
}

/* Fields vessel parses but cannot apply on this host (or at all) are refused with the
 * reason, never silently ignored. */
static int refuse_unsupported(const struct spec *s, vs_err_t *err)
{
	if (s->has_intel_rdt && access("/sys/fs/resctrl/info", F_OK) != 0)
		return vs_err(err, 0,
			      "linux.intelRdt: this host has no resctrl filesystem "
			      "(Intel RDT / AMD PQoS not present or not mounted)");
	if (s->has_intel_rdt)
		return vs_err(err, 0, "linux.intelRdt: not supported by vessel yet");
	return 0;
}

/* Without root, only a user namespace of the container's own gives it a root (and the
 * rights to build its rootfs); runc and crun refuse such a config the same way. */
static int check_rootless(const struct spec *s, vs_err_t *err)
{
	if (geteuid() == 0)
		return 0;
	static const char hint[] = "(`vessel spec --rootless` writes such a config)";
	if (!s->ns[NS_USER].enabled)
		return vs_err(err, 0,
			      "linux.namespaces: running as uid %u (rootless), the container "
			      "needs a user namespace: add {\"type\": \"user\"} %s",
			      (unsigned)geteuid(), hint);
	return 0;
}

/* A rootless runtime can make a cgroup only where one was delegated to it. Elsewhere (a
 * cgroup v1 or hybrid host, whose hierarchies belong to root) the container stays in
 * the caller's cgroup, as with crun, unless the config names a cgroup path: that one
 * must work. What this leaves unapplied is said once, on stderr. Returns 1 then. */
static int make_cgroup(struct launch *l, bool path_given, vs_err_t *err)
{
	vs_err_t why = NULL;
	if (cgroup_make(l->cg, &why) == 0)
		return 0;
	if (!rootless() || path_given) {
		if (rootless())
			vs_err_wrap(&why, "rootless, with linux.cgroupsPath given");
		if (err)
			*err = why;
		else
			vs_err_free(&why);
		return -1;
	}
	/* the config's own limits: not the device rules vessel adds to keep /dev usable */
	struct cgroup_resources *own = NULL;
	char asked[160] = "";
	if (cgroup_resources_parse(l->spec->resources_json, NULL, &own, NULL) == 0)
		cgroup_resources_limits(own, asked, sizeof(asked));
	cgroup_resources_free(own);
	if (*asked)
		vs_warn("rootless: limits are not applied (linux.resources: %s): the container "
			"has no cgroup of its own, %s: cgroup v1 and hybrid hosts delegate none; "
			"on cgroup v2 give linux.cgroupsPath a subtree delegated to uid %u",
			asked, why->msg, (unsigned)geteuid());
	else
		vs_warn("rootless: the container has no cgroup of its own and no limits are "
			"applied (%s)",
			why->msg);
	vs_err_free(&why);
	cgroup_forget(l->cg);
	return 1;
}

int launch_systemd_cgroup_path(const char *spec_path, const char *id, char **out, vs_err_t *err)
{
	if (access("/run/systemd/system", F_OK) != 0)
		return vs_err(err, 0,
			      "--systemd-cgroup: systemd is not running on this host "
			      "(no /run/systemd/system); leave the flag out to use cgroupfs");
	char slice[256] = "system.slice", prefix[256] = "vessel", name[256];
	snprintf(name, sizeof(name), "%s", id);
	if (spec_path && *spec_path) {
		if (sscanf(spec_path, "%255[^:]:%255[^:]:%255s", slice, prefix, name) != 3)
			return vs_err(err, 0,
				      "linux.cgroupsPath: with --systemd-cgroup it must be "
				      "slice:prefix:name, not `%s`",
				      spec_path);
	}
	char dir[1024] = "";
	size_t used = 0;
	/* every dash-separated prefix of the slice is a parent slice */
	for (const char *d = strchr(slice, '-'); d; d = strchr(d + 1, '-'))
		used += (size_t)snprintf(dir + used, sizeof(dir) - used, "/%.*s.slice",
					 (int)(d - slice), slice);
	snprintf(dir + used, sizeof(dir) - used, "/%s", slice);
	if (asprintf(out, "%s/%s-%s.scope", dir, prefix, name) < 0)
		return vs_err(err, ENOMEM, "cgroup path");
	return 0;
}

/* The record that exists before anything else: who is creating the container (so that
 * a reader can tell a live create from a dead one) and the cgroup directories it will
 * make. */
static int record_creating(const struct vs_globals *g, const struct launch_opts *o,
			   struct launch *l, vs_err_t *err)
{
	struct container_state *st = &l->st;
	char created[64];
	rfc3339_now(created, sizeof(created));
	st->phase = PHASE_CREATING;
	st->runtime_pid = getpid();
	st->runtime_start_time = proc_start_time(st->runtime_pid);
	st->bundle = strdup(o->bundle);
	st->rootfs = strdup(l->spec->root_path);
	st->created = strdup(created);
	st->owner = getuid();
	st->annotations = l->spec->annotations ? json_incref(l->spec->annotations) : NULL;
	st->hooks = l->spec->hooks_json ? json_incref(l->spec->hooks_json) : NULL;
	st->cgroup = cgroup_to_json(l->cg);
	if (!st->bundle || !st->rootfs || !st->created || !st->cgroup)
		return vs_err(err, ENOMEM, "state");
	if (st->runtime_start_time == 0)
		return vs_err(err, 0, "read our own start time from /proc/self/stat");
	return state_create(g, o->id, st, err);
}

/* The cgroup as made: cgroup_apply may have switched a controller on at a cgroup2 root,
 * which delete gives back. */
static int record_cgroup(struct launch *l, vs_err_t *err)
{
	json_t *now = cgroup_to_json(l->cg);
	if (!now)
		return vs_err(err, ENOMEM, "state");
	/* mostly nothing changed: the record on disk already says it */
	if (json_equal(now, l->st.cgroup)) {
		json_decref(now);
		return 0;
	}
	json_decref(l->st.cgroup);
	l->st.cgroup = now;
	return state_save(&l->st, err);
}

int launch_container(const struct vs_globals *g, const struct launch_opts *o, struct launch *l,
		     vs_err_t *err)
{
	cleanup_free char *systemd_path = NULL;
	memset(l, 0, sizeof(*l));
	l->sync_fd = -1;
	l->st.dir_fd = -1;
	if (state_check_id(o->id, err) < 0 || state_check_free(g, o->id, err) < 0)
		return -1;
	if (spec_load(o->bundle, &l->spec, err) < 0)
		return -1;
	if (!l->spec->has_process)
		return vs_err(err, 0, "%s/config.json: process: is required to start a container",
			      o->bundle);
	if (rootfs_check_shared_mount_ns(l->spec, err) < 0 ||
	    refuse_unsupported(l->spec, err) < 0 || check_rootless(l->spec, err) < 0)
		return vs_err_wrap(err, "%s/config.json", o->bundle);
	struct seccomp_prog *prog = NULL;
	if (l->spec->seccomp && seccomp_compile(l->spec->seccomp, &prog, err) < 0)
		return vs_err_wrap(err, "linux.seccomp");
	const char *cgroups_path = l->spec->cgroups_path;
	if (g->systemd_cgroup) {
		if (launch_systemd_cgroup_path(cgroups_path, o->id, &systemd_path, err) < 0)
			goto fail_prog;
		cgroups_path = systemd_path;
	}
	if (cgroup_plan(cgroups_path, o->id, &l->cg, err) < 0 || record_creating(g, o, l, err) < 0)
		goto fail_prog;
	l->have_state = true;
	state_sweep_unnamed(g);
	int made = make_cgroup(l, l->spec->cgroups_path && *l->spec->cgroups_path, err);
	if (made < 0 || (made == 0 && cgroup_apply(l->cg, l->spec->resources, err) < 0) ||
	    record_cgroup(l, err) < 0)
		goto fail;
	if (spawn_init(l, o, prog, err) < 0)
		goto fail;
	seccomp_prog_free(prog);
	prog = NULL;
	if (o->pid_file && waitloop_write_pid_file(o->pid_file, l->pid, err) < 0)
		goto fail;
	l->st.phase = PHASE_CREATED;
	if (state_save(&l->st, err) < 0)
		goto fail;
	/* the record is complete: the init may now outlive us */
	if (sync_send(l->sync_fd, SYNC_COMMIT, err) < 0)
		goto fail;
	return 0;
fail:
	launch_abort(l);
fail_prog:
	seccomp_prog_free(prog);
	return -1;
}

void launch_abort(struct launch *l)
{
	if (l->pid > 0) {
		kill(l->pid, SIGKILL);
		while (waitpid(l->pid, NULL, 0) < 0 && errno == EINTR)
			;
		l->pid = 0;
	}
	vs_err_t e = NULL;
	if (l->cg && cgroup_destroy(l->cg, &e) < 0) {
		vs_warn("cleanup: %s", e->msg);
		vs_err_free(&e);
	}
	if (l->have_state && state_remove(&l->st, &e) < 0) {
		vs_warn("cleanup: %s", e->msg);
		vs_err_free(&e);
	}
	l->have_state = false;
}

void launch_release(struct launch *l)
{
	if (l->sync_fd >= 0)
		close(l->sync_fd);
	l->sync_fd = -1;
	cgroup_free(l->cg);
	l->cg = NULL;
	state_release(&l->st);
	spec_free(l->spec);
	l->spec = NULL;
}
