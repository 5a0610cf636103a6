/* Limits in cgroup v1 files (memory, cpu, cpuset, blkio hierarchies). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "sandbox/cgroup_internal.h"

int cg_v1_cpuset(const struct cg_dir *d, const struct cgroup_resources *r, vs_err_t *err)
{
	if (r->cpu.cpus &&
	    cg_set(d->dir, "cpuset.cpus", r->path, "cpu.cpus", err, "%s", r->cpu.cpus) < 0)
		return -1;
	if (r->cpu.mems &&
	    cg_set(d->dir, "cpuset.mems", r->path, "cpu.mems", err, "%s", r->cpu.mems) < 0)
		return -1;
	return 0;
}

/* Limits the kernel has dropped (kmem since 5.16, v1 use_hierarchy) are accepted and
 * skipped, as runc does. */
static void best_effort(const char *dir, const char *file, const char *field, long long v)
{
	vs_err_t e = NULL;
	if (!cg_file_exists(dir, file)) {
		vs_debug("cgroup: %s ignored: this kernel has no %s", field, file);
		return;
	}
	if (cg_writef(dir, file, &e, "%lld", v) < 0) {
		vs_debug("cgroup: %s ignored: %s", field, e->msg);
		vs_err_free(&e);
	}
}

int cg_v1_memory(const struct cg_dir *d, const struct cgroup_resources *r, vs_err_t *err)
{
	const char *dir = d->dir, *rp = r->path;
	if (cg_memory_check(d, r, err) < 0)
		return -1;
	bool memsw = cg_file_exists(dir, "memory.memsw.limit_in_bytes");
	long long limit = r->mem.limit.v, swap = r->mem.swap.v;
	if (r->mem.limit.set) {
		vs_err_t e = NULL;
		if (r->mem.swap.set && memsw) {
			/* memsw >= limit at every moment: raising both goes swap first */
			if (cg_writef(dir, "memory.limit_in_bytes", &e, "%lld", limit) < 0) {
				vs_err_free(&e);
				if (cg_set(dir, "memory.memsw.limit_in_bytes", rp, "memory.swap",
					   err, "%lld", swap) < 0)
					return -1;
			}
			if (cg_set(dir, "memory.limit_in_bytes", rp, "memory.limit", err, "%lld",
				   limit) < 0 ||
			    cg_set(dir, "memory.memsw.limit_in_bytes", rp, "memory.swap", err,
				   "%lld", swap) < 0)
				return -1;
		} else {
			/* a limit above the current memsw is refused: lift memsw first */
			if (memsw &&
			    cg_writef(dir, "memory.limit_in_bytes", &e, "%lld", limit) < 0) {
				vs_err_free(&e);
				if (cg_set(dir, "memory.memsw.limit_in_bytes", rp, "memory.limit",
					   err, "-1") < 0)
					return -1;
			}
			if (cg_set(dir, "memory.limit_in_bytes", rp, "memory.limit", err, "%lld",
				   limit) < 0)
				return -1;
		}
	} else if (r->mem.swap.set) {
		if (memsw && cg_set(dir, "memory.memsw.limit_in_bytes", rp, "memory.swap", err,
				    "%lld", swap) < 0)
			return -1;
	}
	if (r->mem.swap.set && !memsw)
		vs_debug("cgroup: %s.memory.swap ignored: swap accounting is off", rp);
	if (r->mem.reservation.set &&
	    cg_set(dir, "memory.soft_limit_in_bytes", rp, "memory.reservation", err, "%lld",
		   (long long)r->mem.reservation.v) < 0)
		return -1;
	if (r->mem.kernel.set)
		best_effort(dir, "memory.kmem.limit_in_bytes", "memory.kernel",
			    (long long)r->mem.kernel.v);
	if (r->mem.kernel_tcp.set)
		best_effort(dir, "memory.kmem.tcp.limit_in_bytes", "memory.kernelTCP",
			    (long long)r->mem.kernel_tcp.v);
	if (r->mem.has_use_hierarchy)
		best_effort(dir, "memory.use_hierarchy", "memory.useHierarchy",
			    r->mem.use_hierarchy);
	if (r->mem.swappiness.set && cg_set(dir, "memory.swappiness", rp, "memory.swappiness", err,
					    "%lld", (long long)r->mem.swappiness.v) < 0)
		return -1;
	if (r->mem.has_disable_oom &&
	    cg_set(dir, "memory.oom_control", rp, "memory.disableOOMKiller", err, "%d",
		   r->mem.disable_oom) < 0)
		return -1;
	return 0;
}

/* The real-time budget children of dir hold, but for the one named skip. */
static long long siblings_rt_runtime(const char *dir, const char *skip)
{
	long long sum = 0;
	DIR *dd = opendir(dir);
	if (!dd)
		return 0;
	struct dirent *e;
	while ((e = readdir(dd))) {
		if (e->d_type != DT_DIR || e->d_name[0] == '.' || strcmp(e->d_name, skip) == 0)
			continue;
		cleanup_free char *sub = NULL;
		uint64_t v = 0;
		if (asprintf(&sub, "%s/%s", dir, e->d_name) < 0)
			continue;
		if (cg_read_u64(sub, "cpu.rt_runtime_us", &v, NULL) == 0 && v != UINT64_MAX)
			sum += (long long)v;
	}
	closedir(dd);
	return sum;
}

/* A cgroup's real-time budget comes out of its parent's, and a new cgroup's parents
 * (vessel/, a pod's slice) start with none: give each ancestor below the hierarchy's
 * root what its children need, top-down, as runc does. */
static int give_parents_rt_budget(const struct cg_dir *d, long long runtime, const char *rp,
				  vs_err_t *err)
{
	size_t root_len = strlen(d->mountpoint);
	char path[4096];
	snprintf(path, sizeof(path), "%s", d->dir);
	char *ancestors[CG_MAX_DEPTH];
	long long need[CG_MAX_DEPTH];
	int n = 0;
	long long child_need = runtime;
	for (char *slash; n < CG_MAX_DEPTH && (slash = strrchr(path, '/')) &&
			  (size_t)(slash - path) > root_len;) {
		*slash = '\0';
		child_need += siblings_rt_runtime(path, slash + 1);
		ancestors[n] = strdup(path);
		need[n++] = child_need;
	}
	int rc = 0;
	for (int i = n - 1; i >= 0 && rc == 0; i--) {
		uint64_t have = 0;
		if (!ancestors[i])
			rc = vs_err(err, ENOMEM, "%s.cpu.realtimeRuntime", rp);
		else if (cg_read_u64(ancestors[i], "cpu.rt_runtime_us", &have, err) < 0)
			rc = vs_err_wrap(err, "%s.cpu.realtimeRuntime", rp);
		else if ((long long)have < need[i])
			rc = cg_set(ancestors[i], "cpu.rt_runtime_us", rp, "cpu.realtimeRuntime",
				    err, "%lld", need[i]);
	}
	for (int i = 0; i < n; i++)
		free(ancestors[i]);
	return rc;
}

int cg_v1_cpu(const struct cg_dir *d, const struct cgroup_resources *r, vs_err_t *err)
{
	const char *dir = d->dir, *rp = r->path;
	if (r->cpu.shares.set && cg_set(dir, "cpu.shares", rp, "cpu.shares", err, "%lld",
					(long long)r->cpu.shares.v) < 0)
		return -1;
	if (r->cpu.period.set && cg_set(dir, "cpu.cfs_period_us", rp, "cpu.period", err, "%lld",
					(long long)r->cpu.period.v) < 0)
		return -1;
	if (r->cpu.quota.set && cg_set(dir, "cpu.cfs_quota_us", rp, "cpu.quota", err, "%lld",
				       (long long)r->cpu.quota.v) < 0)
		return -1;
	if (r->cpu.burst.set && cg_set(dir, "cpu.cfs_burst_us", rp, "cpu.burst", err, "%lld",
				       (long long)r->cpu.burst.v) < 0)
		return -1;
	if (r->cpu.rt_period.set && cg_set(dir, "cpu.rt_period_us", rp, "cpu.realtimePeriod", err,
					   "%lld", (long long)r->cpu.rt_period.v) < 0)
		return -1;
	if (r->cpu.rt_runtime.set && r->cpu.rt_runtime.v > 0 &&
	    give_parents_rt_budget(d, (long long)r->cpu.rt_runtime.v, rp, err) < 0)
		return -1;
	if (r->cpu.rt_runtime.set && cg_set(dir, "cpu.rt_runtime_us", rp, "cpu.realtimeRuntime",
					    err, "%lld", (long long)r->cpu.rt_runtime.v) < 0)
		return -1;
	if (r->cpu.idle.set &&
	    cg_set(dir, "cpu.idle", rp, "cpu.idle", err, "%lld", (long long)r->cpu.idle.v) < 0)
		return -1;
	return 0;
}

static const char *const thr_file[CG_NTHR] = {
    [CG_THR_READ_BPS] = "blkio.throttle.read_bps_device",
    [CG_THR_WRITE_BPS] = "blkio.throttle.write_bps_device",
    [CG_THR_READ_IOPS] = "blkio.throttle.read_iops_device",
    [CG_THR_WRITE_IOPS] = "blkio.throttle.write_iops_device",
};

int cg_v1_blkio(const struct cg_dir *d, const struct cgroup_resources *r, vs_err_t *err)
{
	const char *dir = d->dir, *rp = r->path;
	/* CFQ's blkio.weight is gone since 5.0; BFQ offers blkio.bfq.weight instead */
	bool cfq = cg_file_exists(dir, "blkio.weight");
	const char *weight = cfq ? "blkio.weight" : "blkio.bfq.weight";
	const char *weight_dev = cfq ? "blkio.weight_device" : "blkio.bfq.weight_device";
	/* runc and crun fail too when the scheduler has no weight: say why, not ENOENT */
	if (r->blkio.weight.set && !cfq && !cg_file_exists(dir, weight))
		return vs_err(
		    err, 0,
		    "%s.blockIO.weight: the disks' I/O scheduler offers no weight on this "
		    "host (neither blkio.weight nor blkio.bfq.weight)",
		    rp);
	if (r->blkio.weight.set && cg_set(dir, weight, rp, "blockIO.weight", err, "%lld",
					  (long long)r->blkio.weight.v) < 0)
		return -1;
	if (r->blkio.leaf_weight.set) {
		if (cg_file_exists(dir, "blkio.leaf_weight")) {
			if (cg_set(dir, "blkio.leaf_weight", rp, "blockIO.leafWeight", err, "%lld",
				   (long long)r->blkio.leaf_weight.v) < 0)
				return -1;
		} else {
			vs_debug("cgroup: %s.blockIO.leafWeight ignored: no CFQ scheduler", rp);
		}
	}
	for (size_t i = 0; i < r->blkio.n_wdev; i++) {
		const struct cg_blk_weight *w = &r->blkio.wdev[i];
		char field[64];
		snprintf(field, sizeof(field), "blockIO.weightDevice[%zu]", i);
		if (w->weight.set &&
		    cg_set(dir, weight_dev, rp, field, err, "%lld:%lld %lld", (long long)w->major,
			   (long long)w->minor, (long long)w->weight.v) < 0)
			return -1;
		if (w->leaf_weight.set && cfq &&
		    cg_set(dir, "blkio.leaf_weight_device", rp, field, err, "%lld:%lld %lld",
			   (long long)w->major, (long long)w->minor,
			   (long long)w->leaf_weight.v) < 0)
			return -1;
	}
	for (int t = 0; t < CG_NTHR; t++)
		for (size_t i = 0; i < r->blkio.n_thr[t]; i++) {
			const struct cg_blk_rate *b = &r->blkio.thr[t][i];
			char field[64];
			snprintf(field, sizeof(field), "blockIO.%s[%zu]", cg_thr_json[t], i);
			if (cg_set(dir, thr_file[t], rp, field, err, "%lld:%lld %llu",
				   (long long)b->major, (long long)b->minor,
				   (unsigned long long)b->rate) < 0)
				return -1;
		}
	return 0;
}
