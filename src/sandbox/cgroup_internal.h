/* Shared between the cgroup*.c files only (and their unit tests); other areas use sandbox.h.
 *
 * cgroup_layout.c    which hierarchies are mounted and who owns each controller
 * cgroup_fs.c        reading and writing cgroup files, removing directory trees
 * cgroup_resources.c linux.resources -> struct cgroup_resources
 * cgroup.c           create, enter, pids, destroy, mounts
 * cgroup_freeze.c    pause and resume;  cgroup_state.c  the state.json form
 * cgroup_apply.c     routes each limit to the hierarchy owning its controller
 * cgroup_v1.c        the v1 files;  cgroup_v2.c  the v2 files and value conversions
 * cgroup_devices_v1.c device rules -> v1 devices.allow/deny, updated without a gap
 * cgroup_devices.c   device rules -> the v2 eBPF program
 * cgroup_stats.c     `events --stats` */
#ifndef VESSEL_SANDBOX_CGROUP_INTERNAL_H
#define VESSEL_SANDBOX_CGROUP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sandbox/sandbox.h"

/* Controllers, as the kernel names them in v1 mount options (v2 calls blkio "io"). */
enum cg_ctrl {
	CG_CPU,
	CG_CPUACCT,
	CG_CPUSET,
	CG_MEMORY,
	CG_DEVICES,
	CG_FREEZER,
	CG_BLKIO,
	CG_PIDS,
	CG_HUGETLB,
	CG_NET_CLS,
	CG_NET_PRIO,
	CG_PERF_EVENT,
	CG_RDMA,
	CG_MISC,
	CG_NCTRL
};
#define CG_BIT(c) (1u << (c))

const char *cg_ctrl_name(enum cg_ctrl c);    /* v1 name: "blkio" */
const char *cg_ctrl_v2_name(enum cg_ctrl c); /* v2 name: "io"; NULL when v2 has no such
						controller file set (devices, freezer,
						net_cls, net_prio: built in or absent) */
int cg_ctrl_from_name(const char *name);     /* v1 or v2 name -> enum, -1 if unknown */

enum cg_mode { CG_MODE_LEGACY, CG_MODE_HYBRID, CG_MODE_UNIFIED };
const char *cg_mode_name(enum cg_mode m);

/* One mounted hierarchy, from a line of /proc/self/mountinfo. */
struct cg_hier {
	char *mountpoint; /* /sys/fs/cgroup/memory */
	char *root;	  /* the hierarchy path mounted there, "/" on the host */
	char *name;	  /* basename of the mount point, "" for /sys/fs/cgroup itself */
	char *options;	  /* mount data for a fresh mount: "cpu,cpuacct", "none,name=systemd" */
	bool v2;
	uint32_t ctrls; /* CG_BIT()s this hierarchy owns */
};

struct cg_layout {
	enum cg_mode mode;
	size_t n;
	struct cg_hier *h;
};

/* Parses mountinfo text. v2_controllers is the content of the cgroup2 root's
 * cgroup.controllers; NULL reads it from the mount (tests pass fixture text). */
int cg_layout_parse(const char *mountinfo, const char *v2_controllers, struct cg_layout **out,
		    vs_err_t *err);
/* The layout of this process's mount namespace. */
int cg_layout_detect(struct cg_layout **out, vs_err_t *err);
void cg_layout_free(struct cg_layout *l);
/* The hierarchy owning controller c (v1 first: on hybrid hosts a controller bound to a v1
 * hierarchy is unavailable to v2), or NULL. */
const struct cg_hier *cg_layout_owner(const struct cg_layout *l, enum cg_ctrl c);

/* --- the container's directories --- */

struct cg_dir {
	char *name, *dir, *fstype, *options, *mountpoint;
	bool v2;
	uint32_t ctrls;
	int created;	       /* how many trailing components of the path destroy removes */
	int made;	       /* how many of them cgroup_create itself made (undone on failure) */
	uint32_t root_enabled; /* v2: controllers this container enabled in the hierarchy
				  root's subtree_control, given back when it is the last */
};

struct cgroup {
	char *path; /* "/vessel/ID" */
	size_t n;
	struct cg_dir *d;
	struct cgroup_mount *mounts; /* n views of d[], for cgroup_mounts() */
	bool delegate;		     /* enable the cgroup2 controllers along the path (v2 only) */
};

#define CG_MAX_DEPTH 64 /* levels in a cgroup path */

/* Fills cg->mounts from cg->d once the directories are known. */
int cg_finish(struct cgroup *cg, vs_err_t *err);
/* Writes the freezer state (v1 freezer.state or v2 cgroup.freeze) without waiting. */
int cg_freezer_write(struct cg_dir *d, bool frozen, vs_err_t *err);

/* cgroup_plan() and cgroup_create() on a given layout (tests pass a fixture). */
int cg_plan_in(const struct cg_layout *l, const char *cgroups_path, const char *id,
	       struct cgroup **out, vs_err_t *err);
int cg_create_in(const struct cg_layout *l, const char *cgroups_path, const char *id,
		 struct cgroup **out, vs_err_t *err);

/* The directory holding controller c for this container (v1 first), or NULL. */
struct cg_dir *cg_dir_for(struct cgroup *cg, enum cg_ctrl c);
struct cg_dir *cg_dir_v2(struct cgroup *cg);

/* --- files (cgroup_fs.c) --- */

/* Writes one value with a single write(2): the kernel parses each write on its own. */
int cg_write(const char *dir, const char *file, const char *value, vs_err_t *err);
int cg_writef(const char *dir, const char *file, vs_err_t *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Writes one limit; an error names the field: "linux.resources.cpu.shares: write ...". */
int cg_set(const char *dir, const char *file, const char *rpath, const char *field, vs_err_t *err,
	   const char *fmt, ...) __attribute__((format(printf, 6, 7)));
int cg_read(const char *dir, const char *file, char **out, vs_err_t *err);
/* First number of the file; "max" reads as UINT64_MAX. */
int cg_read_u64(const char *dir, const char *file, uint64_t *out, vs_err_t *err);
/* "key value" lines (memory.stat, cpu.stat, cgroup.events): 0 and *out set when found. */
int cg_read_key(const char *dir, const char *file, const char *key, uint64_t *out);
bool cg_file_exists(const char *dir, const char *file);
/* Appends the pids in dir/cgroup.procs and its sub-cgroups. */
int cg_read_procs(const char *dir, bool recursive, pid_t **pids, size_t *n, size_t *cap,
		  vs_err_t *err);
/* rmdir of dir's sub-cgroups (deepest first) and dir; ENOENT is success. EBUSY is retried
 * until deadline_ms (CLOCK_MONOTONIC). */
int cg_rmdir_tree(const char *dir, int64_t deadline_ms, vs_err_t *err);
int64_t cg_now_ms(void);
/* Hands a local error to err (kept only if err holds none yet); returns -1. */
int cg_err_move(vs_err_t *err, vs_err_t *e);

/* --- resources --- */

struct cg_opt {
	bool set;
	int64_t v;
};

enum { CG_ACC_MKNOD = 1, CG_ACC_READ = 2, CG_ACC_WRITE = 4, CG_ACC_ALL = 7 };

struct cg_dev_rule {
	bool allow;
	char type;	      /* 'a', 'b' or 'c' */
	int64_t major, minor; /* -1: any */
	unsigned access;      /* CG_ACC_* */
};

struct cg_blk_weight {
	int64_t major, minor;
	struct cg_opt weight, leaf_weight;
};

struct cg_blk_rate {
	int64_t major, minor;
	uint64_t rate;
};

enum { CG_THR_READ_BPS, CG_THR_WRITE_BPS, CG_THR_READ_IOPS, CG_THR_WRITE_IOPS, CG_NTHR };

struct cg_hugepage {
	char *size; /* "2MB" */
	uint64_t limit;
};

struct cg_kv {
	char *key, *value;
};

struct cg_netprio {
	char *ifname;
	uint32_t prio;
};

struct cg_rdma {
	char *device;
	struct cg_opt handles, objects;
};

struct cgroup_resources {
	char *path; /* "linux.resources", to name fields in apply errors */
	struct {
		struct cg_opt limit, reservation, swap, kernel, kernel_tcp, swappiness;
		bool has_disable_oom, disable_oom, has_use_hierarchy, use_hierarchy;
		bool check_before_update; /* refuse a limit below the current usage */
	} mem;
	struct {
		struct cg_opt shares, quota, period, burst, rt_runtime, rt_period, idle;
		char *cpus, *mems;
	} cpu;
	struct cg_opt pids_limit;
	struct {
		struct cg_opt weight, leaf_weight;
		struct cg_blk_weight *wdev;
		size_t n_wdev;
		struct cg_blk_rate *thr[CG_NTHR];
		size_t n_thr[CG_NTHR];
	} blkio;
	struct cg_hugepage *huge;
	size_t n_huge;
	bool has_devices;
	struct cg_dev_rule *dev;
	size_t n_dev;
	struct cg_kv *unified;
	size_t n_unified;
	struct {
		struct cg_opt classid;
		struct cg_netprio *prio;
		size_t n_prio;
	} net;
	struct cg_rdma *rdma;
	size_t n_rdma;
};

extern const char *const cg_thr_json[CG_NTHR]; /* "throttleReadBpsDevice", ... */

/* memory.checkBeforeUpdate: fails, naming memory.limit, when the new limit is below what
 * the cgroup uses now (on v2 such a limit would OOM-kill the container at once). */
int cg_memory_check(const struct cg_dir *d, const struct cgroup_resources *r, vs_err_t *err);

/* --- value conversions (cgroup_v2.c) --- */

/* cpu.shares [2, 262144] -> cpu.weight [1, 10000], the quadratic fit runc >= 1.3.2 and
 * crun >= 1.23 use (1024 -> 100); 0 stays 0 (unset). */
uint64_t cg_shares_to_weight(uint64_t shares);
/* blkio.weight [10, 1000] -> io.weight [1, 10000], as runc. */
uint64_t cg_blkio_to_io_weight(uint64_t w);

/* --- writers: each takes the directory of the hierarchy owning the controller --- */

typedef int cg_writer_fn(const struct cg_dir *d, const struct cgroup_resources *r, vs_err_t *err);
cg_writer_fn cg_v1_cpuset, cg_v1_memory, cg_v1_cpu, cg_v1_blkio; /* cgroup_v1.c */
cg_writer_fn cg_v2_cpuset, cg_v2_memory, cg_v2_cpu, cg_v2_io;	 /* cgroup_v2.c */
cg_writer_fn cg_pids_apply, cg_hugetlb_apply, cg_rdma_apply;	 /* both, cgroup_v2.c */
/* linux.resources.unified, verbatim, into the cgroup2 directory d. */
int cg_v2_unified(struct cg_dir *d, const struct cgroup_resources *r, vs_err_t *err);
/* Makes controller (v2 name) usable in the v2 directory: enables it in the subtree_control
 * of every ancestor that does not yet delegate it. */
int cg_v2_enable(struct cg_dir *d, const char *ctrl, vs_err_t *err);
/* After the container's directories are gone: turns off at the hierarchy root (and in
 * any cgroup below that delegates it on) each controller cg_v2_enable turned on there,
 * unless a cgroup below still holds a limit of it (cg_v2_limited). */
void cg_v2_give_back(const struct cg_dir *d);
/* Does any cgroup below dir hold a limit of ctrl: a "<ctrl>.…max" file that is neither
 * "max" nor empty? */
bool cg_v2_limited(const char *dir, const char *ctrl);

/* --- devices (cgroup_devices_v1.c, cgroup_devices.c) --- */

/* The v1 lines for devices.allow/devices.deny: one ("c 1:3 rwm", "a" for everything), or
 * two for a narrower rule of type "a" (its "b" and "c" halves). Returns the count. */
#define CG_DEV_LINE 64
size_t cg_dev_rule_v1(const struct cg_dev_rule *rule, char lines[2][CG_DEV_LINE]);
/* The rules applied from "deny all", last match wins, in the kernel's v1 model: a default
 * and exceptions to it (allowed devices when the default denies, denied ones when it
 * allows; .allow tells which), each for one exact type:major:minor pattern. */
struct cg_dev_list {
	bool allow_all;
	size_t n, cap;
	struct cg_dev_rule *ex;
	size_t lossy; /* 1 + index of the first rule v1 cannot express, else 0 */
};
int cg_dev_v1_emulate(const struct cg_dev_rule *rules, size_t n, struct cg_dev_list *out,
		      vs_err_t *err);
void cg_dev_list_free(struct cg_dev_list *l);
/* Makes the v1 directory's device list what the rules say, with no moment on the way
 * where an access allowed before and after is refused. */
int cg_devices_v1_apply(const char *dir, const struct cg_dev_rule *rules, size_t n, vs_err_t *err);

struct bpf_insn;
/* The BPF_PROG_TYPE_CGROUP_DEVICE program for rules: last matching rule wins, no match
 * denies. Caller frees *insns. */
int cg_dev_bpf_build(const struct cg_dev_rule *rules, size_t n, struct bpf_insn **insns,
		     size_t *count, vs_err_t *err);
/* Loads the program and attaches it to the cgroup2 directory (BPF_F_ALLOW_MULTI),
 * then detaches the programs that were there before: no moment without a filter. */
int cg_devices_v2_apply(const char *dir, const struct cg_dev_rule *rules, size_t n, vs_err_t *err);

#endif
