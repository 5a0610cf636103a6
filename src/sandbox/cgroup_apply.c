/* Routes each group of limits to the hierarchy that owns its controller.
 *
 * On a hybrid host the same container has, say, memory in a v1 hierarchy and hugetlb in
 * the cgroup2 one, so the choice is made per controller, not per host. */
#include <errno.h>
#include <string.h>

#include "sandbox/cgroup_internal.h"

static bool mem_set(const struct cgroup_resources *r)
{
	return r->mem.limit.set || r->mem.reservation.set || r->mem.swap.set || r->mem.kernel.set ||
	       r->mem.kernel_tcp.set || r->mem.swappiness.set || r->mem.has_disable_oom ||
	       r->mem.has_use_hierarchy;
}

static bool cpu_set(const struct cgroup_resources *r)
{
	return r->cpu.shares.set || r->cpu.quota.set || r->cpu.period.set || r->cpu.burst.set ||
	       r->cpu.rt_runtime.set || r->cpu.rt_period.set || r->cpu.idle.set;
}

static bool blkio_set(const struct cgroup_resources *r)
{
	bool any = r->blkio.weight.set || r->blkio.leaf_weight.set || r->blkio.n_wdev;
	for (int t = 0; t < CG_NTHR; t++)
		any |= r->blkio.n_thr[t] != 0;
	return any;
}

int cg_memory_check(const struct cg_dir *d, const struct cgroup_resources *r, vs_err_t *err)
{
	if (!r->mem.check_before_update || !r->mem.limit.set || r->mem.limit.v < 0)
		return 0;
	uint64_t usage;
	if (cg_read_u64(d->dir, d->v2 ? "memory.current" : "memory.usage_in_bytes", &usage, err) <
	    0)
		return vs_err_wrap(err, "%s.memory.checkBeforeUpdate", r->path);
	if (usage > (uint64_t)r->mem.limit.v)
		return vs_err(
		    err, 0,
		    "%s.memory.limit: %lld is below the %llu bytes the container uses now "
		    "(memory.checkBeforeUpdate)",
		    r->path, (long long)r->mem.limit.v, (unsigned long long)usage);
	return 0;
}

static int unavailable(vs_err_t *err, const struct cgroup_resources *r, const char *field,
		       const char *ctrl)
{
	return vs_err(err, 0, "%s.%s: the %s cgroup controller is not available on this host",
		      r->path, field, ctrl);
}

/* The directory for controller c, made ready for writing; NULL with err when absent. */
static struct cg_dir *ready(struct cgroup *cg, const struct cgroup_resources *r, enum cg_ctrl c,
			    const char *field, vs_err_t *err)
{
	struct cg_dir *d = cg_dir_for(cg, c);
	if (!d) {
		unavailable(err, r, field, cg_ctrl_name(c));
		return NULL;
	}
	if (d->v2 && cg_v2_enable(d, cg_ctrl_v2_name(c), err) < 0) {
		vs_err_wrap(err, "%s.%s", r->path, field);
		return NULL;
	}
	return d;
}

int cgroup_apply(struct cgroup *cg, const struct cgroup_resources *r, vs_err_t *err)
{
	if (!r)
		return 0;
	struct cg_dir *d;
#define APPLY(cond, ctrl, field, v1fn, v2fn)                                                       \
	do {                                                                                       \
		if (!(cond))                                                                       \
			break;                                                                     \
		if (!(d = ready(cg, r, ctrl, field, err)))                                         \
			return -1;                                                                 \
		if ((d->v2 ? v2fn(d, r, err) : v1fn(d, r, err)) < 0)                               \
			return -1;                                                                 \
	} while (0)

	APPLY(r->cpu.cpus || r->cpu.mems, CG_CPUSET, r->cpu.cpus ? "cpu.cpus" : "cpu.mems",
	      cg_v1_cpuset, cg_v2_cpuset);
	APPLY(mem_set(r), CG_MEMORY, "memory", cg_v1_memory, cg_v2_memory);
	APPLY(cpu_set(r), CG_CPU, "cpu", cg_v1_cpu, cg_v2_cpu);
	APPLY(r->pids_limit.set, CG_PIDS, "pids", cg_pids_apply, cg_pids_apply);
	APPLY(blkio_set(r), CG_BLKIO, "blockIO", cg_v1_blkio, cg_v2_io);
	APPLY(r->n_huge, CG_HUGETLB, "hugepageLimits", cg_hugetlb_apply, cg_hugetlb_apply);
	APPLY(r->n_rdma, CG_RDMA, "rdma", cg_rdma_apply, cg_rdma_apply);
#undef APPLY

	/* net_cls and net_prio exist only in v1 (v2 filters by cgroup path instead): where
	 * they are not mounted the limit is refused, never silently dropped */
	if (r->net.classid.set) {
		if (!(d = cg_dir_for(cg, CG_NET_CLS)))
			return unavailable(err, r, "network.classID", "net_cls");
		if (cg_writef(d->dir, "net_cls.classid", err, "%lld", (long long)r->net.classid.v) <
		    0)
			return vs_err_wrap(err, "%s.network.classID", r->path);
	}
	if (r->net.n_prio) {
		if (!(d = cg_dir_for(cg, CG_NET_PRIO)))
			return unavailable(err, r, "network.priorities", "net_prio");
		for (size_t i = 0; i < r->net.n_prio; i++)
			if (cg_writef(d->dir, "net_prio.ifpriomap", err, "%s %u",
				      r->net.prio[i].ifname, r->net.prio[i].prio) < 0)
				return vs_err_wrap(err, "%s.network.priorities[%zu]", r->path, i);
	}

	if (r->has_devices) {
		if ((d = cg_dir_for(cg, CG_DEVICES))) {
			if (cg_devices_v1_apply(d->dir, r->dev, r->n_dev, err) < 0)
				return vs_err_wrap(err, "%s.devices", r->path);
		} else if ((d = cg_dir_v2(cg))) {
			if (cg_devices_v2_apply(d->dir, r->dev, r->n_dev, err) < 0)
				return vs_err_wrap(err, "%s.devices", r->path);
		} else {
			return unavailable(err, r, "devices", "devices");
		}
	}

	if (r->n_unified) {
		if (!(d = cg_dir_v2(cg)))
			return vs_err(err, 0, "%s.unified: needs cgroup v2, which is not mounted",
				      r->path);
		if (cg_v2_unified(d, r, err) < 0)
			return -1;
	}
	return 0;
}
