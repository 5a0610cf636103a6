/* Limits in cgroup v2 files, the v1 -> v2 value conversions, and the files both versions
 * share (pids.max, hugetlb, rdma.max). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h> /* constants only: M_LN2l, M_LN10l (no libm) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

#include "base/log.h"
#include "base/util.h"
#include "sandbox/cgroup_internal.h"

/* Natural log and exp by series, in long double: enough for the weight formula without
 * pulling libm into every binary. */
static long double ln_ld(long double x)
{
	int k = 0;
	while (x >= 2) {
		x /= 2;
		k++;
	}
	while (x < 1) {
		x *= 2;
		k--;
	}
	/* ln x = 2 atanh(z), z = (x-1)/(x+1) < 1/3 converges fast */
	long double z = (x - 1) / (x + 1), z2 = z * z, term = z, sum = 0;
	for (int n = 1; n < 80; n += 2) {
		sum += term / n;
		term *= z2;
	}
	return 2 * sum + k * M_LN2l;
}

static long double exp_ld(long double y)
{
	int k = (int)(y / M_LN2l);
	long double r = y - k * M_LN2l, sum = 1, term = 1;
	for (int n = 1; n < 40; n++) {
		term *= r / n;
		sum += term;
	}
	for (; k > 0; k--)
		sum *= 2;
	for (; k < 0; k++)
		sum /= 2;
	return sum;
}

uint64_t cg_shares_to_weight(uint64_t shares)
{
	if (shares == 0)
		return 0;
	if (shares <= 2)
		return 1;
	if (shares >= 262144)
		return 10000;
	/* the quadratic in log2(shares) through (2, 1), (1024, 100), (262144, 10000) */
	long double l = ln_ld((long double)shares) / M_LN2l;
	long double w = exp_ld(((l * l + 125 * l) / 612 - 7.0L / 34) * M_LN10l);
	uint64_t nearest = (uint64_t)(w + 0.5L);
	long double off = w - (long double)nearest;
	if (off < 1e-9L && off > -1e-9L)
		return nearest; /* exact in real arithmetic (1024 -> 100): no rounding up */
	uint64_t up = (uint64_t)w;
	return (long double)up < w ? up + 1 : up;
}

uint64_t cg_blkio_to_io_weight(uint64_t w)
{
	if (w == 0)
		return 0;
	return 1 + (w - 10) * 9999 / 990;
}

static bool has_word(const char *list, const char *word)
{
	size_t len = strlen(word);
	for (const char *p = list; (p = strstr(p, word)); p += len)
		if ((p == list || p[-1] == ' ') &&
		    (p[len] == '\0' || p[len] == ' ' || p[len] == '\n'))
			return true;
	return false;
}

static int file_has_word(const char *dir, const char *file, const char *word, bool *out,
			 vs_err_t *err)
{
	cleanup_free char *text = NULL;
	if (cg_read(dir, file, &text, err) < 0)
		return -1;
	*out = has_word(text, word);
	return 0;
}

/* Enabling a controller at the root and giving it back are serialised between vessel
 * processes, so a container being created never loses a controller it just checked. */
static int lock_root(const char *mountpoint)
{
	int fd = open(mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		while (flock(fd, LOCK_EX) < 0 && errno == EINTR)
			;
	return fd;
}

int cg_v2_enable(struct cg_dir *d, const char *ctrl, vs_err_t *err)
{
	bool yes;
	if (!ctrl)
		return vs_err(err, 0, "cgroup v2 has no such controller");
	if (file_has_word(d->dir, "cgroup.controllers", ctrl, &yes, err) < 0)
		return -1;
	if (yes)
		return 0;
	if (file_has_word(d->mountpoint, "cgroup.controllers", ctrl, &yes, err) < 0)
		return -1;
	if (!yes)
		return vs_err(
		    err, 0, "the %s controller is not available in the cgroup v2 hierarchy", ctrl);
	/* delegate it down each ancestor; the leaf itself holds the processes */
	cleanup_free char *walk = strdup(d->dir);
	if (!walk)
		return vs_err(err, ENOMEM, "cgroup");
	cleanup_close int lock = lock_root(d->mountpoint); /* held until return */
	(void)lock;
	size_t mlen = strlen(d->mountpoint);
	for (char *s = walk + mlen;;) {
		char saved = *s;
		*s = '\0';
		if (file_has_word(walk, "cgroup.subtree_control", ctrl, &yes, err) < 0)
			return -1;
		if (!yes && cg_writef(walk, "cgroup.subtree_control", err, "+%s", ctrl) < 0)
			return vs_err_wrap(err, "enable the %s controller", ctrl);
		if (!yes && s == walk + mlen) {
			int c = cg_ctrl_from_name(ctrl);
			if (c >= 0)
				d->root_enabled |= CG_BIT(c);
			vs_debug("cgroup: enabled %s in %s/cgroup.subtree_control", ctrl, walk);
		}
		*s = saved;
		s = strchr(s + 1, '/');
		if (!s)
			return 0;
	}
}

static bool is_subdir(const struct dirent *e)
{
	return e->d_type == DT_DIR && strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
}

/* Unlimited reads "max" in most files, but hugetlb shows its default as LONG_MAX rounded
 * down to a page (9223372036854771712): anything from 2^62 up is no limit either. */
static bool holds_limit(const char *v)
{
	if (v[0] == '\0' || v[0] == '\n' || strncmp(v, "max", 3) == 0)
		return false;
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (end != v && errno == 0 && n >= (1ULL << 62))
		return false;
	return true;
}

/* A "<ctrl>.…max" file below dir holding a limit (not "max", not empty). Unreadable or
 * too deep counts as limited: when in doubt the controller stays on. */
static bool limited_below(const char *dir, const char *ctrl, int depth)
{
	DIR *d = depth <= CG_MAX_DEPTH ? opendir(dir) : NULL;
	if (!d)
		return true;
	size_t clen = strlen(ctrl);
	bool found = false;
	struct dirent *e;
	while (!found && (e = readdir(d))) {
		cleanup_free char *sub = NULL;
		if (asprintf(&sub, "%s/%s", dir, e->d_name) < 0) {
			found = true;
			break;
		}
		if (is_subdir(e)) {
			found = limited_below(sub, ctrl, depth + 1);
			continue;
		}
		size_t len = strlen(e->d_name);
		if (depth == 0 || strncmp(e->d_name, ctrl, clen) != 0 || e->d_name[clen] != '.' ||
		    len < 3 || strcmp(e->d_name + len - 3, "max") != 0)
			continue;
		cleanup_free char *v = NULL;
		vs_err_t err = NULL;
		if (vs_read_file(sub, 65536, &v, NULL, &err) < 0) {
			vs_err_free(&err);
			found = true;
			continue;
		}
		found = holds_limit(v);
	}
	closedir(d);
	return found;
}

/* Takes ctrl out of every subtree_control from dir down, deepest first (the kernel
 * refuses a parent while a child still delegates it). */
static int switch_off(const char *dir, const char *ctrl, int depth, vs_err_t *err)
{
	DIR *d = depth <= CG_MAX_DEPTH ? opendir(dir) : NULL;
	if (!d)
		return vs_err(err, errno ? errno : ELOOP, "opendir `%s`", dir);
	struct dirent *e;
	int rc = 0;
	while (rc == 0 && (e = readdir(d))) {
		cleanup_free char *sub = NULL;
		if (!is_subdir(e))
			continue;
		if (asprintf(&sub, "%s/%s", dir, e->d_name) < 0)
			rc = vs_err(err, ENOMEM, "cgroup");
		else
			rc = switch_off(sub, ctrl, depth + 1, err);
	}
	closedir(d);
	bool on;
	if (rc == 0 && file_has_word(dir, "cgroup.subtree_control", ctrl, &on, err) == 0 && on)
		rc = cg_writef(dir, "cgroup.subtree_control", err, "-%s", ctrl);
	return rc;
}

bool cg_v2_limited(const char *dir, const char *ctrl)
{
	return limited_below(dir, ctrl, 0);
}

void cg_v2_give_back(const struct cg_dir *d)
{
	if (!d->v2 || !d->root_enabled)
		return;
	cleanup_close int lock = lock_root(d->mountpoint); /* held until return */
	(void)lock;
	for (int c = 0; c < CG_NCTRL; c++) {
		const char *name = cg_ctrl_v2_name(c);
		if (!(d->root_enabled & CG_BIT(c)) || !name)
			continue;
		/* switching it off would drop someone's limits with it: then it stays */
		if (limited_below(d->mountpoint, name, 0)) {
			vs_debug("cgroup: %s stays on at %s: a cgroup below has a limit", name,
				 d->mountpoint);
			continue;
		}
		vs_err_t e = NULL;
		if (switch_off(d->mountpoint, name, 0, &e) < 0) {
			vs_debug("cgroup: give back %s: %s", name, e->msg);
			vs_err_free(&e);
		}
	}
}

int cg_v2_cpuset(const struct cg_dir *d, const struct cgroup_resources *r, vs_err_t *err)
{
	if (r->cpu.cpus &&
	    cg_set(d->dir, "cpuset.cpus", r->path, "cpu.cpus", err, "%s", r->cpu.cpus) < 0)
		return -1;
	if (r->cpu.mems &&
	    cg_set(d->dir, "cpuset.mems", r->path, "cpu.mems", err, "%s", r->cpu.mems) < 0)
		return -1;
	return 0;
}

static void no_v2(const struct cgroup_resources *r, const char *field)
{
	vs_debug("cgroup: %s.%s ignored: cgroup v2 has no such limit", r->path, field);
}

int cg_v2_memory(const struct cg_dir *d, const struct cgroup_resources *r, vs_err_t *err)
{
	const char *dir = d->dir, *rp = r->path;
	if (cg_memory_check(d, r, err) < 0)
		return -1;
	if (r->mem.limit.set) {
		int rc = r->mem.limit.v < 0
			     ? cg_set(dir, "memory.max", rp, "memory.limit", err, "max")
			     : cg_set(dir, "memory.max", rp, "memory.limit", err, "%lld",
				      (long long)r->mem.limit.v);
		if (rc < 0)
			return -1;
	}
	if (r->mem.swap.set) {
		/* OCI's swap is memory plus swap (v1 memsw); v2 limits swap alone */
		long long swap = r->mem.swap.v;
		if (swap > 0 && !(r->mem.limit.set && r->mem.limit.v > 0))
			return vs_err(err, 0, "%s.memory.swap: needs memory.limit on cgroup v2",
				      rp);
		if (!cg_file_exists(dir, "memory.swap.max"))
			vs_debug("cgroup: %s.memory.swap ignored: swap accounting is off", rp);
		else if ((swap < 0 ? cg_set(dir, "memory.swap.max", rp, "memory.swap", err, "max")
				   : cg_set(dir, "memory.swap.max", rp, "memory.swap", err, "%lld",
					    swap - (long long)r->mem.limit.v)) < 0)
			return -1;
	}
	if (r->mem.reservation.set) {
		int rc = r->mem.reservation.v < 0
			     ? cg_set(dir, "memory.low", rp, "memory.reservation", err, "max")
			     : cg_set(dir, "memory.low", rp, "memory.reservation", err, "%lld",
				      (long long)r->mem.reservation.v);
		if (rc < 0)
			return -1;
	}
	if (r->mem.kernel.set)
		no_v2(r, "memory.kernel");
	if (r->mem.kernel_tcp.set)
		no_v2(r, "memory.kernelTCP");
	if (r->mem.swappiness.set)
		no_v2(r, "memory.swappiness");
	if (r->mem.has_disable_oom && r->mem.disable_oom)
		no_v2(r, "memory.disableOOMKiller");
	if (r->mem.has_use_hierarchy)
		no_v2(r, "memory.useHierarchy");
	return 0;
}

int cg_v2_cpu(const struct cg_dir *d, const struct cgroup_resources *r, vs_err_t *err)
{
	const char *dir = d->dir, *rp = r->path;
	if (r->cpu.shares.set &&
	    cg_set(dir, "cpu.weight", rp, "cpu.shares", err, "%llu",
		   (unsigned long long)cg_shares_to_weight((uint64_t)r->cpu.shares.v)) < 0)
		return -1;
	if (r->cpu.quota.set || r->cpu.period.set) {
		/* cpu.max holds both: keep the half that is not being set */
		char quota[32] = "max";
		unsigned long long period = 100000;
		cleanup_free char *cur = NULL;
		vs_err_t e = NULL;
		if (cg_read(dir, "cpu.max", &cur, &e) == 0)
			sscanf(cur, "%31s %llu", quota, &period);
		vs_err_free(&e);
		if (r->cpu.quota.set && r->cpu.quota.v < 0)
			strcpy(quota, "max");
		else if (r->cpu.quota.set)
			snprintf(quota, sizeof(quota), "%lld", (long long)r->cpu.quota.v);
		if (r->cpu.period.set)
			period = (unsigned long long)r->cpu.period.v;
		if (cg_set(dir, "cpu.max", rp, r->cpu.quota.set ? "cpu.quota" : "cpu.period", err,
			   "%s %llu", quota, period) < 0)
			return -1;
	}
	if (r->cpu.burst.set && cg_set(dir, "cpu.max.burst", rp, "cpu.burst", err, "%lld",
				       (long long)r->cpu.burst.v) < 0)
		return -1;
	if (r->cpu.idle.set &&
	    cg_set(dir, "cpu.idle", rp, "cpu.idle", err, "%lld", (long long)r->cpu.idle.v) < 0)
		return -1;
	if ((r->cpu.rt_runtime.set && r->cpu.rt_runtime.v != 0) ||
	    (r->cpu.rt_period.set && r->cpu.rt_period.v != 0))
		return vs_err(err, 0, "%s.cpu.%s: realtime scheduling limits need cgroup v1", rp,
			      r->cpu.rt_runtime.set ? "realtimeRuntime" : "realtimePeriod");
	return 0;
}

static void rate(char *buf, size_t len, uint64_t v)
{
	if (v == 0) /* v1 reads 0 as "no limit" */
		snprintf(buf, len, "max");
	else
		snprintf(buf, len, "%llu", (unsigned long long)v);
}

int cg_v2_io(const struct cg_dir *d, const struct cgroup_resources *r, vs_err_t *err)
{
	const char *dir = d->dir, *rp = r->path;
	/* BFQ takes blkio's 1..1000 scale as is; io.weight is 1..10000 */
	bool bfq = cg_file_exists(dir, "io.bfq.weight");
	if (r->blkio.weight.set) {
		int rc = bfq ? cg_set(dir, "io.bfq.weight", rp, "blockIO.weight", err, "%lld",
				      (long long)r->blkio.weight.v)
			     : cg_set(dir, "io.weight", rp, "blockIO.weight", err, "default %llu",
				      (unsigned long long)cg_blkio_to_io_weight(
					  (uint64_t)r->blkio.weight.v));
		if (rc < 0)
			return -1;
	}
	if (r->blkio.leaf_weight.set)
		no_v2(r, "blockIO.leafWeight");
	for (size_t i = 0; i < r->blkio.n_wdev; i++) {
		const struct cg_blk_weight *w = &r->blkio.wdev[i];
		char field[64];
		snprintf(field, sizeof(field), "blockIO.weightDevice[%zu]", i);
		if (!w->weight.set)
			continue;
		int rc =
		    bfq ? cg_set(dir, "io.bfq.weight", rp, field, err, "%lld:%lld %lld",
				 (long long)w->major, (long long)w->minor, (long long)w->weight.v)
			: cg_set(dir, "io.weight", rp, field, err, "%lld:%lld %llu",
				 (long long)w->major, (long long)w->minor,
				 (unsigned long long)cg_blkio_to_io_weight((uint64_t)w->weight.v));
		if (rc < 0)
			return -1;
	}
	static const char *const key[CG_NTHR] = {"rbps", "wbps", "riops", "wiops"};
	for (int t = 0; t < CG_NTHR; t++)
		for (size_t i = 0; i < r->blkio.n_thr[t]; i++) {
			const struct cg_blk_rate *b = &r->blkio.thr[t][i];
			char field[64], val[32];
			snprintf(field, sizeof(field), "blockIO.%s[%zu]", cg_thr_json[t], i);
			rate(val, sizeof(val), b->rate);
			if (cg_set(dir, "io.max", rp, field, err, "%lld:%lld %s=%s",
				   (long long)b->major, (long long)b->minor, key[t], val) < 0)
				return -1;
		}
	return 0;
}

int cg_pids_apply(const struct cg_dir *d, const struct cgroup_resources *r, vs_err_t *err)
{
	if (r->pids_limit.v <= 0)
		return cg_set(d->dir, "pids.max", r->path, "pids.limit", err, "max");
	return cg_set(d->dir, "pids.max", r->path, "pids.limit", err, "%lld",
		      (long long)r->pids_limit.v);
}

int cg_hugetlb_apply(const struct cg_dir *d, const struct cgroup_resources *r, vs_err_t *err)
{
	for (size_t i = 0; i < r->n_huge; i++) {
		const struct cg_hugepage *h = &r->huge[i];
		char file[64], field[64];
		snprintf(file, sizeof(file), d->v2 ? "hugetlb.%s.max" : "hugetlb.%s.limit_in_bytes",
			 h->size);
		snprintf(field, sizeof(field), "hugepageLimits[%zu]", i);
		if (!cg_file_exists(d->dir, file))
			return vs_err(err, 0, "%s.%s.pageSize: no %s huge pages on this host",
				      r->path, field, h->size);
		if (cg_set(d->dir, file, r->path, field, err, "%llu",
			   (unsigned long long)h->limit) < 0)
			return -1;
	}
	return 0;
}

int cg_rdma_apply(const struct cg_dir *d, const struct cgroup_resources *r, vs_err_t *err)
{
	for (size_t i = 0; i < r->n_rdma; i++) {
		const struct cg_rdma *x = &r->rdma[i];
		char h[32] = "max", o[32] = "max", field[128];
		if (x->handles.set)
			snprintf(h, sizeof(h), "%lld", (long long)x->handles.v);
		if (x->objects.set)
			snprintf(o, sizeof(o), "%lld", (long long)x->objects.v);
		snprintf(field, sizeof(field), "rdma.%s", x->device);
		if (cg_set(d->dir, "rdma.max", r->path, field, err,
			   "%s hca_handle=%s hca_object=%s", x->device, h, o) < 0)
			return -1;
	}
	return 0;
}

int cg_v2_unified(struct cg_dir *d, const struct cgroup_resources *r, vs_err_t *err)
{
	for (size_t i = 0; i < r->n_unified; i++) {
		const struct cg_kv *kv = &r->unified[i];
		char field[300];
		snprintf(field, sizeof(field), "unified.%s", kv->key);
		/* "memory.max" needs the memory controller delegated down to us */
		cleanup_free char *ctrl = strndup(kv->key, strcspn(kv->key, "."));
		if (!ctrl)
			return vs_err(err, ENOMEM, "%s.%s", r->path, field);
		int c = cg_ctrl_from_name(ctrl);
		if (c >= 0 && cg_ctrl_v2_name(c) && strcmp(cg_ctrl_v2_name(c), ctrl) == 0 &&
		    (d->ctrls & CG_BIT(c)) && cg_v2_enable(d, ctrl, err) < 0)
			return vs_err_wrap(err, "%s.%s", r->path, field);
		if (!cg_file_exists(d->dir, kv->key))
			return vs_err(err, 0,
				      "%s.%s: no such file in the cgroup v2 directory (is its "
				      "controller bound to a v1 hierarchy?)",
				      r->path, field);
		if (cg_set(d->dir, kv->key, r->path, field, err, "%s", kv->value) < 0)
			return -1;
	}
	return 0;
}
