/* linux.resources -> struct cgroup_resources, every field checked and named on error.
 *
 * Following runc, a zero for limits where zero makes no sense (memory, cpu quota and
 * period) means "not set". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/util.h"
#include "sandbox/cgroup_internal.h"

/* Linux dev_t: 12 bits of major, 20 of minor. */
#define MAJOR_MAX 4095
#define MINOR_MAX 1048575

const char *const cg_thr_json[CG_NTHR] = {
    [CG_THR_READ_BPS] = "throttleReadBpsDevice",
    [CG_THR_WRITE_BPS] = "throttleWriteBpsDevice",
    [CG_THR_READ_IOPS] = "throttleReadIOPSDevice",
    [CG_THR_WRITE_IOPS] = "throttleWriteIOPSDevice",
};

static int bad(vs_err_t *err, const char *path, const char *key, const char *what)
{
	return vs_err(err, 0, "%s.%s: %s", path, key, what);
}

static int opt_range(json_t *o, const char *path, const char *key, int64_t min, int64_t max,
		     struct cg_opt *out, vs_err_t *err)
{
	int64_t v;
	int rc = vjson_int_range(o, path, key, min, max, &v, err);
	if (rc > 0)
		*out = (struct cg_opt){.set = true, .v = v};
	return rc;
}

/* Bytes, or -1 for no limit; 0 is "not set". */
static int opt_bytes(json_t *o, const char *path, const char *key, struct cg_opt *out,
		     vs_err_t *err)
{
	int64_t v;
	int rc = vjson_int64(o, path, key, &v, err);
	if (rc <= 0)
		return rc;
	if (v < -1)
		return bad(err, path, key, "must be -1 (unlimited) or a number of bytes");
	if (v != 0)
		*out = (struct cg_opt){.set = true, .v = v};
	return 1;
}

static int child(json_t *o, const char *path, const char *key, json_t **out, char **cpath,
		 vs_err_t *err)
{
	int rc = vjson_object(o, path, key, out, err);
	if (rc > 0 && !(*cpath = vjson_join(path, key)))
		return vs_err(err, ENOMEM, "%s", key);
	return rc;
}

static int parse_memory(json_t *o, const char *path, struct cgroup_resources *r, vs_err_t *err)
{
	if (opt_bytes(o, path, "limit", &r->mem.limit, err) < 0 ||
	    opt_bytes(o, path, "reservation", &r->mem.reservation, err) < 0 ||
	    opt_bytes(o, path, "swap", &r->mem.swap, err) < 0 ||
	    opt_bytes(o, path, "kernel", &r->mem.kernel, err) < 0 ||
	    opt_bytes(o, path, "kernelTCP", &r->mem.kernel_tcp, err) < 0 ||
	    opt_range(o, path, "swappiness", 0, 100, &r->mem.swappiness, err) < 0)
		return -1;
	int rc = vjson_bool(o, path, "disableOOMKiller", &r->mem.disable_oom, err);
	if (rc < 0)
		return -1;
	r->mem.has_disable_oom = rc > 0;
	rc = vjson_bool(o, path, "useHierarchy", &r->mem.use_hierarchy, err);
	if (rc < 0)
		return -1;
	r->mem.has_use_hierarchy = rc > 0;
	if (vjson_bool(o, path, "checkBeforeUpdate", &r->mem.check_before_update, err) < 0)
		return -1;
	/* v1 memsw and runc's v2 conversion both count memory plus swap */
	if (r->mem.swap.set && r->mem.swap.v > 0 && r->mem.limit.set && r->mem.limit.v > 0 &&
	    r->mem.swap.v < r->mem.limit.v)
		return bad(err, path, "swap",
			   "must be at least memory.limit (it counts memory plus swap)");
	if (r->mem.swap.set && r->mem.swap.v > 0 && r->mem.limit.set && r->mem.limit.v == -1)
		return bad(err, path, "swap", "cannot be limited while memory.limit is -1");
	return 0;
}

/* "0-3,5": what cpuset.cpus and cpuset.mems accept. */
static int cpu_list(json_t *o, const char *path, const char *key, char **out, vs_err_t *err)
{
	const char *s;
	int rc = vjson_string(o, path, key, &s, err);
	if (rc <= 0 || !*s)
		return rc;
	if (strlen(s) > 4096 || strspn(s, "0123456789,-") != strlen(s))
		return bad(err, path, key, "must be a list of numbers and ranges, e.g. \"0-3,6\"");
	if (!(*out = strdup(s)))
		return vs_err(err, ENOMEM, "%s", key);
	return 1;
}

static int parse_cpu(json_t *o, const char *path, struct cgroup_resources *r, vs_err_t *err)
{
	int64_t v;
	if (opt_range(o, path, "shares", 2, 262144, &r->cpu.shares, err) < 0)
		return -1;
	int rc = vjson_int64(o, path, "quota", &v, err);
	if (rc < 0)
		return -1;
	if (rc > 0 && (v < -1 || (v > 0 && v < 1000)))
		return bad(err, path, "quota",
			   "must be -1 (unlimited) or at least 1000 (microseconds)");
	if (rc > 0 && v != 0)
		r->cpu.quota = (struct cg_opt){.set = true, .v = v};
	rc = vjson_int64(o, path, "period", &v, err);
	if (rc < 0)
		return -1;
	if (rc > 0 && v != 0 && (v < 1000 || v > 1000000))
		return bad(err, path, "period",
			   "must be an integer from 1000 to 1000000 (microseconds)");
	if (rc > 0 && v != 0)
		r->cpu.period = (struct cg_opt){.set = true, .v = v};
	if (opt_range(o, path, "burst", 0, INT64_MAX, &r->cpu.burst, err) < 0 ||
	    opt_range(o, path, "realtimeRuntime", -1, INT64_MAX, &r->cpu.rt_runtime, err) < 0 ||
	    opt_range(o, path, "realtimePeriod", 0, INT64_MAX, &r->cpu.rt_period, err) < 0 ||
	    opt_range(o, path, "idle", 0, 1, &r->cpu.idle, err) < 0 ||
	    cpu_list(o, path, "cpus", &r->cpu.cpus, err) < 0 ||
	    cpu_list(o, path, "mems", &r->cpu.mems, err) < 0)
		return -1;
	return 0;
}

static int parse_pids(json_t *o, const char *path, struct cgroup_resources *r, vs_err_t *err)
{
	int64_t v;
	int rc = vjson_require(vjson_int64(o, path, "limit", &v, err), path, "limit",
			       "the maximum number of tasks", err);
	if (rc < 0)
		return -1;
	if (v < -1)
		return bad(err, path, "limit", "must be -1 or 0 (unlimited) or a number of tasks");
	r->pids_limit = (struct cg_opt){.set = true, .v = v};
	return 0;
}

static int dev_number(json_t *o, const char *path, const char *key, bool wildcard, int64_t max,
		      int64_t *out, vs_err_t *err)
{
	*out = -1;
	int rc = vjson_int_range(o, path, key, wildcard ? -1 : 0, max, out, err);
	if (rc == 0 && !wildcard)
		return vjson_require(rc, path, key, "device number", err);
	return rc;
}

/* Element i of an array that must hold objects, with its "path[i]" name in *epath. */
static json_t *element(json_t *arr, const char *apath, size_t i, char **epath, vs_err_t *err)
{
	json_t *e = json_array_get(arr, i);
	if (!(*epath = vjson_index(apath, i))) {
		vs_err(err, ENOMEM, "%s", apath);
		return NULL;
	}
	if (!json_is_object(e)) {
		vs_err(err, 0, "%s: must be an object", *epath);
		return NULL;
	}
	return e;
}

static int array_field(json_t *o, const char *path, const char *key, json_t **arr, char **apath,
		       vs_err_t *err)
{
	int rc = vjson_array(o, path, key, arr, err);
	if (rc > 0 && !(*apath = vjson_join(path, key)))
		return vs_err(err, ENOMEM, "%s", key);
	return rc;
}

static int parse_blkio(json_t *o, const char *path, struct cgroup_resources *r, vs_err_t *err)
{
	if (opt_range(o, path, "weight", 10, 1000, &r->blkio.weight, err) < 0 ||
	    opt_range(o, path, "leafWeight", 10, 1000, &r->blkio.leaf_weight, err) < 0)
		return -1;
	json_t *arr;
	cleanup_free char *apath = NULL;
	int rc = array_field(o, path, "weightDevice", &arr, &apath, err);
	if (rc < 0)
		return -1;
	if (rc > 0) {
		r->blkio.wdev = calloc(json_array_size(arr) + 1, sizeof(*r->blkio.wdev));
		if (!r->blkio.wdev)
			return vs_err(err, ENOMEM, "%s", apath);
		for (size_t i = 0; i < json_array_size(arr); i++) {
			cleanup_free char *ep = NULL;
			json_t *e = element(arr, apath, i, &ep, err);
			if (!e)
				goto fail;
			struct cg_blk_weight *w = &r->blkio.wdev[r->blkio.n_wdev++];
			if (dev_number(e, ep, "major", false, MAJOR_MAX, &w->major, err) < 0 ||
			    dev_number(e, ep, "minor", false, MINOR_MAX, &w->minor, err) < 0 ||
			    opt_range(e, ep, "weight", 10, 1000, &w->weight, err) < 0 ||
			    opt_range(e, ep, "leafWeight", 10, 1000, &w->leaf_weight, err) < 0)
				goto fail;
		}
	}
	for (int t = 0; t < CG_NTHR; t++) {
		free(apath);
		apath = NULL;
		rc = array_field(o, path, cg_thr_json[t], &arr, &apath, err);
		if (rc < 0)
			return -1;
		if (rc == 0)
			continue;
		r->blkio.thr[t] = calloc(json_array_size(arr) + 1, sizeof(*r->blkio.thr[t]));
		if (!r->blkio.thr[t])
			return vs_err(err, ENOMEM, "%s", apath);
		for (size_t i = 0; i < json_array_size(arr); i++) {
			cleanup_free char *ep = NULL;
			json_t *e = element(arr, apath, i, &ep, err);
			if (!e)
				goto fail;
			struct cg_blk_rate *d = &r->blkio.thr[t][r->blkio.n_thr[t]++];
			if (dev_number(e, ep, "major", false, MAJOR_MAX, &d->major, err) < 0 ||
			    dev_number(e, ep, "minor", false, MINOR_MAX, &d->minor, err) < 0 ||
			    vjson_require(vjson_uint64(e, ep, "rate", &d->rate, err), ep, "rate",
					  "bytes or operations per second", err) < 0)
				goto fail;
		}
	}
	return 0;
fail:
	return -1;
}

static bool valid_page_size(const char *s)
{
	size_t digits = strspn(s, "0123456789");
	if (digits == 0 || digits > 6 || s[0] == '0')
		return false;
	return strcmp(s + digits, "KB") == 0 || strcmp(s + digits, "MB") == 0 ||
	       strcmp(s + digits, "GB") == 0;
}

static int parse_hugepages(json_t *arr, const char *apath, struct cgroup_resources *r,
			   vs_err_t *err)
{
	r->huge = calloc(json_array_size(arr) + 1, sizeof(*r->huge));
	if (!r->huge)
		return vs_err(err, ENOMEM, "%s", apath);
	for (size_t i = 0; i < json_array_size(arr); i++) {
		cleanup_free char *ep = NULL;
		json_t *e = element(arr, apath, i, &ep, err);
		if (!e)
			goto fail;
		struct cg_hugepage *h = &r->huge[r->n_huge++];
		const char *size;
		if (vjson_require(vjson_string(e, ep, "pageSize", &size, err), ep, "pageSize",
				  "e.g. \"2MB\"", err) < 0)
			goto fail;
		if (!valid_page_size(size))
			return bad(err, ep, "pageSize", "must be a size like \"2MB\" or \"1GB\"");
		if (!(h->size = strdup(size)))
			return vs_err(err, ENOMEM, "%s", ep);
		if (vjson_require(vjson_uint64(e, ep, "limit", &h->limit, err), ep, "limit",
				  "bytes", err) < 0)
			goto fail;
	}
	return 0;
fail:
	return -1;
}

static int parse_access(const char *s, unsigned *out)
{
	unsigned acc = 0;
	if (!*s)
		return -1;
	for (; *s; s++) {
		unsigned bit = *s == 'r'   ? CG_ACC_READ
			       : *s == 'w' ? CG_ACC_WRITE
			       : *s == 'm' ? CG_ACC_MKNOD
					   : 0;
		if (!bit || (acc & bit))
			return -1;
		acc |= bit;
	}
	*out = acc;
	return 0;
}

static int parse_devices(json_t *arr, const char *apath, struct cgroup_resources *r, vs_err_t *err)
{
	r->has_devices = true;
	r->dev = calloc(json_array_size(arr) + 1, sizeof(*r->dev));
	if (!r->dev)
		return vs_err(err, ENOMEM, "%s", apath);
	for (size_t i = 0; i < json_array_size(arr); i++) {
		cleanup_free char *ep = NULL;
		json_t *e = element(arr, apath, i, &ep, err);
		if (!e)
			goto fail;
		struct cg_dev_rule *d = &r->dev[r->n_dev++];
		d->type = 'a';
		d->access = CG_ACC_ALL;
		if (vjson_require(vjson_bool(e, ep, "allow", &d->allow, err), ep, "allow",
				  "true or false", err) < 0)
			goto fail;
		const char *s;
		int rc = vjson_string(e, ep, "type", &s, err);
		if (rc < 0)
			goto fail;
		if (rc > 0) {
			if (strcmp(s, "a") != 0 && strcmp(s, "b") != 0 && strcmp(s, "c") != 0)
				return bad(err, ep, "type", "must be \"a\", \"b\" or \"c\"");
			d->type = s[0];
		}
		if (dev_number(e, ep, "major", true, MAJOR_MAX, &d->major, err) < 0 ||
		    dev_number(e, ep, "minor", true, MINOR_MAX, &d->minor, err) < 0)
			goto fail;
		rc = vjson_string(e, ep, "access", &s, err);
		if (rc < 0)
			goto fail;
		if (rc > 0 && parse_access(s, &d->access) < 0)
			return bad(err, ep, "access", "must be a combination of r, w and m");
	}
	return 0;
fail:
	return -1;
}

/* A cgroup v2 interface file name: written verbatim, so it must stay in the directory. */
static bool valid_unified_key(const char *k)
{
	size_t len = strlen(k);
	if (len == 0 || len > 255 || strcmp(k, ".") == 0 || strcmp(k, "..") == 0)
		return false;
	return strspn(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
	       len;
}

static int parse_unified(json_t *o, const char *path, struct cgroup_resources *r, vs_err_t *err)
{
	r->unified = calloc(json_object_size(o) + 1, sizeof(*r->unified));
	if (!r->unified)
		return vs_err(err, ENOMEM, "%s", path);
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v)
	{
		if (!valid_unified_key(key))
			return vs_err(err, 0, "%s: `%s` is not a cgroup file name", path, key);
		const char *value;
		if (vjson_require(vjson_string(o, path, key, &value, err), path, key, "a string",
				  err) < 0)
			return -1;
		struct cg_kv *kv = &r->unified[r->n_unified++];
		kv->key = strdup(key);
		kv->value = strdup(value);
		if (!kv->key || !kv->value)
			return vs_err(err, ENOMEM, "%s", path);
	}
	return 0;
}

static int parse_network(json_t *o, const char *path, struct cgroup_resources *r, vs_err_t *err)
{
	if (opt_range(o, path, "classID", 0, UINT32_MAX, &r->net.classid, err) < 0)
		return -1;
	json_t *arr;
	cleanup_free char *apath = NULL;
	int rc = array_field(o, path, "priorities", &arr, &apath, err);
	if (rc <= 0)
		return rc;
	r->net.prio = calloc(json_array_size(arr) + 1, sizeof(*r->net.prio));
	if (!r->net.prio)
		return vs_err(err, ENOMEM, "%s", apath);
	for (size_t i = 0; i < json_array_size(arr); i++) {
		cleanup_free char *ep = NULL;
		json_t *e = element(arr, apath, i, &ep, err);
		if (!e)
			goto fail;
		struct cg_netprio *p = &r->net.prio[r->net.n_prio++];
		const char *name;
		if (vjson_require(vjson_string(e, ep, "name", &name, err), ep, "name",
				  "an interface name", err) < 0)
			goto fail;
		if (!*name || strlen(name) > 15 || strpbrk(name, "/ \t\n"))
			return bad(err, ep, "name", "must be an interface name");
		if (!(p->ifname = strdup(name)))
			return vs_err(err, ENOMEM, "%s", ep);
		if (vjson_require(vjson_uint32(e, ep, "priority", &p->prio, err), ep, "priority",
				  "a number", err) < 0)
			goto fail;
	}
	return 0;
fail:
	return -1;
}

static int parse_rdma(json_t *o, const char *path, struct cgroup_resources *r, vs_err_t *err)
{
	r->rdma = calloc(json_object_size(o) + 1, sizeof(*r->rdma));
	if (!r->rdma)
		return vs_err(err, ENOMEM, "%s", path);
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v)
	{
		if (!*key || strlen(key) > 64 || strpbrk(key, "/ \t\n="))
			return vs_err(err, 0, "%s: `%s` is not an RDMA device name", path, key);
		json_t *dev;
		cleanup_free char *dpath = NULL;
		if (vjson_require(child(o, path, key, &dev, &dpath, err), path, key, "an object",
				  err) < 0)
			return -1;
		struct cg_rdma *d = &r->rdma[r->n_rdma++];
		if (!(d->device = strdup(key)))
			return vs_err(err, ENOMEM, "%s", path);
		if (opt_range(dev, dpath, "hcaHandles", 0, UINT32_MAX, &d->handles, err) < 0 ||
		    opt_range(dev, dpath, "hcaObjects", 0, UINT32_MAX, &d->objects, err) < 0)
			return -1;
	}
	return 0;
}

static int parse_all(json_t *res, const char *path, struct cgroup_resources *r, vs_err_t *err)
{
	json_t *o, *arr;
	int rc;
#define SECTION(key, fn)                                                                           \
	do {                                                                                       \
		cleanup_free char *cpath = NULL;                                                   \
		if ((rc = child(res, path, key, &o, &cpath, err)) < 0)                             \
			return -1;                                                                 \
		if (rc > 0 && fn(o, cpath, r, err) < 0)                                            \
			return -1;                                                                 \
	} while (0)
	SECTION("memory", parse_memory);
	SECTION("cpu", parse_cpu);
	SECTION("pids", parse_pids);
	SECTION("blockIO", parse_blkio);
	SECTION("unified", parse_unified);
	SECTION("network", parse_network);
	SECTION("rdma", parse_rdma);
#undef SECTION
	cleanup_free char *hpath = NULL;
	if ((rc = array_field(res, path, "hugepageLimits", &arr, &hpath, err)) < 0)
		return -1;
	if (rc > 0 && parse_hugepages(arr, hpath, r, err) < 0)
		return -1;
	cleanup_free char *dpath = NULL;
	if ((rc = array_field(res, path, "devices", &arr, &dpath, err)) < 0)
		return -1;
	if (rc > 0 && parse_devices(arr, dpath, r, err) < 0)
		return -1;
	return 0;
}

int cgroup_resources_parse(json_t *resources, const char *path, struct cgroup_resources **out,
			   vs_err_t *err)
{
	if (!path)
		path = "linux.resources";
	if (resources && !json_is_null(resources) && !json_is_object(resources))
		return vs_err(err, 0, "%s: must be an object", path);
	struct cgroup_resources *r = calloc(1, sizeof(*r));
	if (!r || !(r->path = strdup(path))) {
		free(r);
		return vs_err(err, ENOMEM, "%s", path);
	}
	if (resources && json_is_object(resources) && parse_all(resources, path, r, err) < 0) {
		cgroup_resources_free(r);
		return -1;
	}
	*out = r;
	return 0;
}

void cgroup_resources_free(struct cgroup_resources *r)
{
	if (!r)
		return;
	free(r->path);
	free(r->cpu.cpus);
	free(r->cpu.mems);
	free(r->blkio.wdev);
	for (int t = 0; t < CG_NTHR; t++)
		free(r->blkio.thr[t]);
	for (size_t i = 0; i < r->n_huge; i++)
		free(r->huge[i].size);
	free(r->huge);
	free(r->dev);
	for (size_t i = 0; i < r->n_unified; i++) {
		free(r->unified[i].key);
		free(r->unified[i].value);
	}
	free(r->unified);
	for (size_t i = 0; i < r->net.n_prio; i++)
		free(r->net.prio[i].ifname);
	free(r->net.prio);
	for (size_t i = 0; i < r->n_rdma; i++)
		free(r->rdma[i].device);
	free(r->rdma);
	free(r);
}

static bool any_opt(const struct cg_opt *o, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (o[i].set)
			return true;
	return false;
}

size_t cgroup_resources_limits(const struct cgroup_resources *r, char *buf, size_t size)
{
	if (size)
		buf[0] = '\0';
	if (!r)
		return 0;
	const struct cg_opt mem[] = {r->mem.limit,  r->mem.reservation, r->mem.swap,
				     r->mem.kernel, r->mem.kernel_tcp,	r->mem.swappiness};
	const struct cg_opt cpu[] = {r->cpu.shares, r->cpu.quota,      r->cpu.period,
				     r->cpu.burst,  r->cpu.rt_runtime, r->cpu.rt_period,
				     r->cpu.idle};
	bool blkio = r->blkio.weight.set || r->blkio.leaf_weight.set || r->blkio.n_wdev;
	for (int t = 0; t < CG_NTHR; t++)
		blkio |= r->blkio.n_thr[t] > 0;
	/* a rule that denies everything it names takes nothing away a cgroup-less rootless
	 * container has (crun's test too): podman sends a deny-all one with every config */
	bool devices = false;
	for (size_t i = 0; i < r->n_dev; i++)
		devices |= r->dev[i].allow || r->dev[i].access != CG_ACC_ALL;
	const struct {
		bool asked;
		const char *name;
	} fields[] = {
	    {any_opt(mem, ARRAY_SIZE(mem)) || r->mem.has_disable_oom || r->mem.has_use_hierarchy,
	     "memory"},
	    {any_opt(cpu, ARRAY_SIZE(cpu)) || r->cpu.cpus || r->cpu.mems, "cpu"},
	    {r->pids_limit.set, "pids"},
	    {blkio, "blockIO"},
	    {r->n_huge > 0, "hugepageLimits"},
	    {devices, "devices"},
	    {r->n_unified > 0, "unified"},
	    {r->net.classid.set || r->net.n_prio, "network"},
	    {r->n_rdma > 0, "rdma"},
	};
	size_t count = 0, used = 0;
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		if (!fields[i].asked)
			continue;
		int w = snprintf(buf + used, used < size ? size - used : 0, "%s%s",
				 count ? ", " : "", fields[i].name);
		if (w > 0 && used + (size_t)w < size)
			used += (size_t)w;
		count++;
	}
	return count;
}
