/* `events --stats`: what the container uses, in runc's JSON shape, read from whichever
 * hierarchy owns each controller. A controller that is absent leaves its section out. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "sandbox/cgroup_internal.h"

/* Missing files read as 0: stats are best effort, limits are not. */
static uint64_t u64(const char *dir, const char *file)
{
	uint64_t v = 0;
	vs_err_t e = NULL;
	if (cg_read_u64(dir, file, &v, &e) < 0)
		vs_err_free(&e);
	return v;
}

static uint64_t key(const char *dir, const char *file, const char *k)
{
	uint64_t v = 0;
	cg_read_key(dir, file, k, &v);
	return v;
}

/* "max" (no limit) reads as UINT64_MAX; runc reports it so, JSON keeps it as the
 * largest integer jansson holds. */
static json_t *num(uint64_t v)
{
	return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

static json_t *entry(uint64_t usage, uint64_t max, uint64_t limit, uint64_t failcnt)
{
	return json_pack("{s:o, s:o, s:o, s:o}", "usage", num(usage), "max", num(max), "limit",
			 num(limit), "failcnt", num(failcnt));
}

static json_t *raw_stat(const char *dir, const char *file)
{
	cleanup_free char *text = NULL;
	vs_err_t e = NULL;
	json_t *raw = json_object();
	if (cg_read(dir, file, &text, &e) < 0) {
		vs_err_free(&e);
		return raw;
	}
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[128];
		unsigned long long v;
		if (sscanf(line, "%127s %llu", name, &v) == 2)
			json_object_set_new(raw, name, num(v));
	}
	return raw;
}

static json_t *memory_v1(const char *dir)
{
	json_t *raw = raw_stat(dir, "memory.stat");
	json_t *cache = json_object_get(raw, "total_cache");
	if (!cache)
		cache = json_object_get(raw, "cache");
	return json_pack(
	    "{s:o, s:o, s:o, s:o, s:o, s:o}", "cache", cache ? json_incref(cache) : json_integer(0),
	    "usage",
	    entry(u64(dir, "memory.usage_in_bytes"), u64(dir, "memory.max_usage_in_bytes"),
		  u64(dir, "memory.limit_in_bytes"), u64(dir, "memory.failcnt")),
	    "swap",
	    entry(u64(dir, "memory.memsw.usage_in_bytes"),
		  u64(dir, "memory.memsw.max_usage_in_bytes"),
		  u64(dir, "memory.memsw.limit_in_bytes"), u64(dir, "memory.memsw.failcnt")),
	    "kernel",
	    entry(u64(dir, "memory.kmem.usage_in_bytes"),
		  u64(dir, "memory.kmem.max_usage_in_bytes"),
		  u64(dir, "memory.kmem.limit_in_bytes"), u64(dir, "memory.kmem.failcnt")),
	    "kernelTCP",
	    entry(u64(dir, "memory.kmem.tcp.usage_in_bytes"),
		  u64(dir, "memory.kmem.tcp.max_usage_in_bytes"),
		  u64(dir, "memory.kmem.tcp.limit_in_bytes"), u64(dir, "memory.kmem.tcp.failcnt")),
	    "raw", raw);
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static json_t *memory_v2(const char *dir)
{
	uint64_t cur = u64(dir, "memory.current"), max = u64(dir, "memory.max");
	/* v1 reported swap as memory plus swap; runc keeps that meaning on v2 */
	uint64_t swap_cur = u64(dir, "memory.swap.current"), swap_max = u64(dir, "memory.swap.max");
	json_t *raw = raw_stat(dir, "memory.stat");
	json_t *cache = json_object_get(raw, "file");
	return json_pack(
	    "{s:o, s:o, s:o, s:o}", "cache", cache ? json_incref(cache) : json_integer(0), "usage",
	    entry(cur, u64(dir, "memory.peak"), max, key(dir, "memory.events", "max")), "swap",
	    entry(sat_add(cur, swap_cur), u64(dir, "memory.swap.peak"), sat_add(max, swap_max),
		  key(dir, "memory.swap.events", "max")),
	    "raw", raw);
}

static json_t *cpu_stats(struct cgroup *cg)
{
	struct cg_dir *acct = cg_dir_for(cg, CG_CPUACCT), *cpu = cg_dir_for(cg, CG_CPU);
	struct cg_dir *v2 = cg_dir_v2(cg);
	json_t *usage = NULL, *thr = NULL;
	if (acct) {
		long hz = sysconf(_SC_CLK_TCK);
		uint64_t ns_per_tick = hz > 0 ? 1000000000ull / (uint64_t)hz : 10000000ull;
		json_t *percpu = json_array();
		cleanup_free char *text = NULL;
		vs_err_t e = NULL;
		if (cg_read(acct->dir, "cpuacct.usage_percpu", &text, &e) == 0) {
			char *p = text, *end;
			for (;;) {
				unsigned long long v = strtoull(p, &end, 10);
				if (end == p)
					break;
				json_array_append_new(percpu, num(v));
				p = end;
			}
		}
		vs_err_free(&e);
		usage = json_pack(
		    "{s:o, s:o, s:o, s:o}", "total", num(u64(acct->dir, "cpuacct.usage")), "percpu",
		    percpu, "kernel", num(key(acct->dir, "cpuacct.stat", "system") * ns_per_tick),
		    "user", num(key(acct->dir, "cpuacct.stat", "user") * ns_per_tick));
	} else if (v2) {
		/* cpu.stat exists in every v2 cgroup, cpu controller or not */
		usage = json_pack("{s:o, s:o, s:o}", "total",
				  num(key(v2->dir, "cpu.stat", "usage_usec") * 1000), "kernel",
				  num(key(v2->dir, "cpu.stat", "system_usec") * 1000), "user",
				  num(key(v2->dir, "cpu.stat", "user_usec") * 1000));
	}
	if (cpu && !cpu->v2)
		thr = json_pack("{s:o, s:o, s:o}", "periods",
				num(key(cpu->dir, "cpu.stat", "nr_periods")), "throttledPeriods",
				num(key(cpu->dir, "cpu.stat", "nr_throttled")), "throttledTime",
				num(key(cpu->dir, "cpu.stat", "throttled_time")));
	else if (v2)
		thr = json_pack("{s:o, s:o, s:o}", "periods",
				num(key(v2->dir, "cpu.stat", "nr_periods")), "throttledPeriods",
				num(key(v2->dir, "cpu.stat", "nr_throttled")), "throttledTime",
				num(key(v2->dir, "cpu.stat", "throttled_usec") * 1000));
	return json_pack("{s:o*, s:o*}", "usage", usage, "throttling", thr);
}

static void blkio_v1(const char *dir, const char *file, json_t *out)
{
	cleanup_free char *text = NULL;
	vs_err_t e = NULL;
	if (cg_read(dir, file, &text, &e) < 0) {
		vs_err_free(&e);
		return;
	}
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned maj, min;
		char op[16];
		unsigned long long v;
		if (sscanf(line, "%u:%u %15s %llu", &maj, &min, op, &v) == 4)
			json_array_append_new(out,
					      json_pack("{s:i, s:i, s:s, s:o}", "major", maj,
							"minor", min, "op", op, "value", num(v)));
	}
}

static void io_v2(const char *dir, json_t *bytes, json_t *ios)
{
	cleanup_free char *text = NULL;
	vs_err_t e = NULL;
	if (cg_read(dir, "io.stat", &text, &e) < 0) {
		vs_err_free(&e);
		return;
	}
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned maj, min;
		int off;
		if (sscanf(line, "%u:%u%n", &maj, &min, &off) != 2)
			continue;
		static const struct {
			const char *k, *op;
			bool bytes;
		} map[] = {{"rbytes=", "Read", true},
			   {"wbytes=", "Write", true},
			   {"rios=", "Read", false},
			   {"wios=", "Write", false}};
		for (size_t i = 0; i < ARRAY_SIZE(map); i++) {
			char *p = strstr(line + off, map[i].k);
			if (!p)
				continue;
			json_array_append_new(
			    map[i].bytes ? bytes : ios,
			    json_pack("{s:i, s:i, s:s, s:o}", "major", maj, "minor", min, "op",
				      map[i].op, "value",
				      num(strtoull(p + strlen(map[i].k), NULL, 10))));
		}
	}
}

static json_t *hugetlb_stats(const struct cg_dir *d)
{
	json_t *out = json_object();
	DIR *dir = opendir("/sys/kernel/mm/hugepages");
	if (!dir)
		return out;
	struct dirent *e;
	while ((e = readdir(dir))) {
		unsigned long kb;
		if (sscanf(e->d_name, "hugepages-%lukB", &kb) != 1)
			continue;
		char size[32], f1[64], f2[64], f3[64];
		if (kb >= (1ul << 20) && kb % (1ul << 20) == 0)
			snprintf(size, sizeof(size), "%luGB", kb >> 20);
		else if (kb >= 1024 && kb % 1024 == 0)
			snprintf(size, sizeof(size), "%luMB", kb >> 10);
		else
			snprintf(size, sizeof(size), "%luKB", kb);
		if (d->v2) {
			snprintf(f1, sizeof(f1), "hugetlb.%s.current", size);
			snprintf(f3, sizeof(f3), "hugetlb.%s.events", size);
			if (!cg_file_exists(d->dir, f1))
				continue;
			/* runc's "max" is the peak usage, which v2 does not keep */
			json_object_set_new(out, size,
					    json_pack("{s:o, s:o, s:o}", "usage",
						      num(u64(d->dir, f1)), "max", num(0),
						      "failcnt", num(key(d->dir, f3, "max"))));
		} else {
			snprintf(f1, sizeof(f1), "hugetlb.%s.usage_in_bytes", size);
			snprintf(f2, sizeof(f2), "hugetlb.%s.max_usage_in_bytes", size);
			snprintf(f3, sizeof(f3), "hugetlb.%s.failcnt", size);
			if (!cg_file_exists(d->dir, f1))
				continue;
			json_object_set_new(
			    out, size,
			    json_pack("{s:o, s:o, s:o}", "usage", num(u64(d->dir, f1)), "max",
				      num(u64(d->dir, f2)), "failcnt", num(u64(d->dir, f3))));
		}
	}
	closedir(dir);
	return out;
}

json_t *cgroup_stats(struct cgroup *cg, vs_err_t *err)
{
	json_t *out = json_object();
	if (!out) {
		vs_err(err, ENOMEM, "stats");
		return NULL;
	}
	json_object_set_new(out, "cpu", cpu_stats(cg));

	struct cg_dir *d = cg_dir_for(cg, CG_MEMORY);
	if (d)
		json_object_set_new(out, "memory", d->v2 ? memory_v2(d->dir) : memory_v1(d->dir));

	if ((d = cg_dir_for(cg, CG_PIDS))) {
		uint64_t limit = u64(d->dir, "pids.max");
		json_object_set_new(out, "pids",
				    json_pack("{s:o, s:o}", "current",
					      num(u64(d->dir, "pids.current")), "limit",
					      num(limit == UINT64_MAX ? 0 : limit)));
	}

	if ((d = cg_dir_for(cg, CG_BLKIO))) {
		json_t *bytes = json_array(), *ios = json_array();
		if (d->v2) {
			io_v2(d->dir, bytes, ios);
		} else {
			blkio_v1(d->dir, "blkio.throttle.io_service_bytes_recursive", bytes);
			blkio_v1(d->dir, "blkio.throttle.io_serviced_recursive", ios);
		}
		json_object_set_new(out, "blkio",
				    json_pack("{s:o, s:o}", "ioServiceBytesRecursive", bytes,
					      "ioServicedRecursive", ios));
	}

	if ((d = cg_dir_for(cg, CG_HUGETLB)))
		json_object_set_new(out, "hugetlb", hugetlb_stats(d));
	return out;
}
