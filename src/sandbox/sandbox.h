/* What the container runtime (src/oci) and the VMM jailer (src/jail) share: control
 * groups, namespace helpers. Resolving a path inside a root lives in base/inroot.h (the
 * image unpacker uses it too).
 *
 * Control groups: one interface over cgroup v1, v2 and the hybrid layout
 * (v1 controllers plus a cgroup2 hierarchy that may own some controllers, e.g. hugetlb).
 *
 * A container lives in one directory per mounted hierarchy (every v1 controller
 * hierarchy, name=systemd and the cgroup2 one), all at the same path relative to the
 * hierarchy's root. Each limit is written to the hierarchy that owns its controller.
 * docs/cgroups.md explains the layout detection and the file-by-file mapping. */
#ifndef VESSEL_SANDBOX_H
#define VESSEL_SANDBOX_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <linux/sched.h>
#include <sys/types.h>

#include "base/error.h"

/* linux.resources of config.json, validated (every field named on error, e.g.
 * "linux.resources.memory.limit: must be an integer", "linux.resources.cpu.shares: must be
 * an integer from 2 to 262144"); absent fields stay unset. */
struct cgroup_resources;
/* resources may be NULL (no limits). path is the dotted prefix for errors, e.g.
 * "linux.resources". */
int cgroup_resources_parse(json_t *resources, const char *path, struct cgroup_resources **out,
			   vs_err_t *err);
void cgroup_resources_free(struct cgroup_resources *r);
/* The linux.resources sections r asks a cgroup for, as "memory, pids" into buf; returns
 * how many. Device rules that only deny need none. */
size_t cgroup_resources_limits(const struct cgroup_resources *r, char *buf, size_t size);

/* A container's cgroup across every hierarchy it lives in. */
struct cgroup;
/* Computes the container's directory in every hierarchy without creating anything, so
 * that create can record them (cgroup_to_json) before they exist: a delete after a crash
 * then finds whatever was made. cgroups_path is linux.cgroupsPath (may be NULL: then
 * "/vessel/<id>"; a relative path is taken under "/vessel/"; an absolute path is used
 * as-is under each hierarchy's root). Works on cgroup v2, v1 and hybrid layouts. Refuses
 * an existing leaf that has processes. */
int cgroup_plan(const char *cgroups_path, const char *id, struct cgroup **out, vs_err_t *err);
/* Creates the planned directories. Fails cleanly (nothing it made left behind). */
int cgroup_make(struct cgroup *cg, vs_err_t *err);
/* Forgets the planned directories (none of them made): the container then stays in its
 * runtime's cgroup, as a rootless runtime's does when it cannot make one. Every other
 * call then works on nothing (no pids, nothing to kill or remove). */
void cgroup_forget(struct cgroup *cg);
/* cgroup_plan then cgroup_make. */
int cgroup_create(const char *cgroups_path, const char *id, struct cgroup **out, vs_err_t *err);
/* Writes the limits (at create and later by `update`). A limit whose controller is not
 * available gives an error naming the field. r may be NULL (nothing to do).
 * It may switch a controller on at a cgroup2 root (recorded for delete to give back):
 * save cgroup_to_json() into state.json after it, `update` included. */
int cgroup_apply(struct cgroup *cg, const struct cgroup_resources *r, vs_err_t *err);
/* Moves pid into the container's cgroup in every hierarchy. */
int cgroup_enter(struct cgroup *cg, pid_t pid, vs_err_t *err);
/* Moves the calling process (it must have one thread, and host privileges) into its
 * cgroup. Moving any other task, or a whole thread group through cgroup.procs, takes the
 * kernel's threadgroup rwsem for writing and waits out an RCU grace period: 10-20 ms on
 * a loaded host. A thread that writes "0" to a v1 `tasks` file skips that lock (about
 * 0.15 ms). born_in_v2: the process was cloned into the cgroup2 directory already
 * (CLONE_INTO_CGROUP), which is then left alone. */
int cgroup_enter_self(struct cgroup *cg, bool born_in_v2, vs_err_t *err);
/* An O_DIRECTORY fd of the container's cgroup2 directory for clone3's
 * CLONE_INTO_CGROUP, or -1 when it has none. */
int cgroup_v2_dir_fd(const struct cgroup *cg);
/* Kills whatever is left (SIGKILL, through cgroup.kill on v2 where available, else by
 * walking cgroup.procs), waits briefly for it to go, then removes every directory
 * (retrying EBUSY for a bounded time). Idempotent: removing what is gone is success. */
int cgroup_destroy(struct cgroup *cg, vs_err_t *err);
/* Freeze or thaw (v1 freezer.state, v2 cgroup.freeze), waiting until the state is reached. */
int cgroup_freeze(struct cgroup *cg, bool frozen, vs_err_t *err);
/* Pids in the container's cgroup and its sub-cgroups (sorted, no duplicates), caller
 * frees *pids. */
int cgroup_pids(struct cgroup *cg, pid_t **pids, size_t *n, vs_err_t *err);
/* One JSON object of stats for `events --stats`, in runc's shape ("cpu", "memory",
 * "pids", "blkio", "hugetlb"). */
json_t *cgroup_stats(struct cgroup *cg, vs_err_t *err);
/* Persisted in the container's state.json so a later `vessel delete` (another process)
 * finds the same directories. */
json_t *cgroup_to_json(const struct cgroup *cg);
int cgroup_from_json(json_t *j, struct cgroup **out, vs_err_t *err);
void cgroup_free(struct cgroup *cg);

/* The path of the container's cgroup relative to each hierarchy root ("/vessel/ID"):
 * what /proc/PID/cgroup shows for it. */
const char *cgroup_path(const struct cgroup *cg);

/* For the container's /sys/fs/cgroup mount when it has no cgroup namespace:
 * each hierarchy the container lives in, with the host directory of its cgroup there. */
struct cgroup_mount {
	const char *name;     /* directory under /sys/fs/cgroup in the container: "memory",
				 "cpu,cpuacct", "unified", "systemd", ...; "" on a pure v2 host,
				 where the cgroup2 hierarchy is /sys/fs/cgroup itself */
	const char *host_dir; /* e.g. /sys/fs/cgroup/memory/vessel/ID */
	const char *fstype;   /* "cgroup" or "cgroup2" */
	const char *options;  /* mount data for a fresh mount in a cgroup namespace:
				 "memory", "none,name=systemd", "" for cgroup2 */
};
size_t cgroup_mounts(const struct cgroup *cg, const struct cgroup_mount **out);

/* Writes one raw cgroup file, "memory.max" = "100M", into the directory of the hierarchy
 * that owns the controller its prefix names (the jailer's --cgroup FILE=VALUE). version is
 * 1 or 2: the kind of hierarchy to use (on a hybrid host each has its controllers); 0
 * takes the owner. An unknown controller, or a file the hierarchy does not have, is an
 * error naming the file. */
int cgroup_write_file(struct cgroup *cg, int version, const char *file, const char *value,
		      vs_err_t *err);
/* Does this host mount a hierarchy of cgroup version 1 (v1 controllers) or 2 (cgroup2)? */
bool cgroup_version_available(int version);

/* --- namespaces --- */

/* Cloning a child into a pid namespace that exists already. setns(CLONE_NEWPID) changes
 * where the caller's next children are born, and only those: the runtime puts that back
 * right after the clone, so nothing else it forks (hooks, a sanitizer's helper) lands in
 * the container.
 *
 * A rootless runtime can do neither: entering a pid namespace owned by the container's
 * user namespace needs that user namespace first (for good), and going back to its own
 * needs rights over the host's. There a short-lived helper enters both and clones the
 * child as the runtime's own (CLONE_PARENT), as runc's nsexec does with its middle
 * process. */
/* clone3(ca) with the child born in pid_ns_fd (-1: ours, a plain clone3). user_ns_fd
 * (or -1) is the user namespace owning it, which the child is then in already. rootless:
 * the caller lacks the host's root (then the helper described above). Returns as clone3
 * does, 0 in the child and its pid in the caller; -1 with err (and errno). */
pid_t ns_clone_in_pid_ns(struct clone_args *ca, int pid_ns_fd, int user_ns_fd, bool rootless,
			 vs_err_t *err);

/* setns() into the namespace file at path (e.g. /var/run/netns/NAME) of type nstype
 * (CLONE_NEWNET, ...): an error names the path. */
int ns_join_path(const char *path, int nstype, vs_err_t *err);

#endif
