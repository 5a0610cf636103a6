/* Which file gets which value, for the writers this host's kernel cannot show (its cgroup2
 * hierarchy owns only hugetlb): run against a plain directory of empty files. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "sandbox/cgroup_internal.h"

static char dir[64];

static void make_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/vessel-test-files-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	static const char *files[] = {"memory.max",	 "memory.low",
				      "memory.swap.max", "cpu.weight",
				      "cpu.max",	 "cpu.max.burst",
				      "cpu.idle",	 "io.weight",
				      "io.max",		 "pids.max",
				      "cpuset.cpus",	 "cpuset.mems",
				      "hugetlb.2MB.max", "hugetlb.1GB.limit_in_bytes"};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		char path[128];
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		FILE *f = fopen(path, "w");
		cr_assert_not_null(f);
		fclose(f);
	}
}

static void remove_dir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(cgroup_files, .init = make_dir, .fini = remove_dir);

static struct cgroup_resources *resources(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);
	cr_assert_not_null(j);
	struct cgroup_resources *r = NULL;
	vs_err_t err = NULL;
	cr_assert_eq(cgroup_resources_parse(j, "linux.resources", &r, &err), 0, "%s",
		     err ? err->msg : "");
	json_decref(j);
	return r;
}

static void assert_file(const char *file, const char *want)
{
	char *text = NULL;
	vs_err_t err = NULL;
	cr_assert_eq(cg_read(dir, file, &text, &err), 0);
	cr_assert_str_eq(text, want, "%s", file);
	free(text);
}

static void write_with(cg_writer_fn *fn, bool v2, const char *json)
{
	struct cg_dir d = {.dir = dir, .v2 = v2};
	struct cgroup_resources *r = resources(json);
	vs_err_t err = NULL;
	cr_assert_eq(fn(&d, r, &err), 0, "%s", err ? err->msg : "");
	cgroup_resources_free(r);
}

Test(cgroup_files, v2_memory)
{
	write_with(cg_v2_memory, true,
		   "{\"memory\": {\"limit\": 536870912, \"swap\": 805306368, \"reservation\": "
		   "1048576, \"swappiness\": 5, \"kernel\": 1}}");
	assert_file("memory.max", "536870912");
	/* OCI swap is memory plus swap; v2 wants swap alone */
	assert_file("memory.swap.max", "268435456");
	assert_file("memory.low", "1048576");
}

Test(cgroup_files, v2_memory_unlimited)
{
	write_with(cg_v2_memory, true, "{\"memory\": {\"limit\": -1, \"swap\": -1}}");
	assert_file("memory.max", "max");
	assert_file("memory.swap.max", "max");
}

Test(cgroup_files, v2_swap_needs_a_limit)
{
	struct cg_dir d = {.dir = dir, .v2 = true};
	struct cgroup_resources *r = resources("{\"memory\": {\"swap\": 1000000}}");
	vs_err_t err = NULL;
	cr_assert_eq(cg_v2_memory(&d, r, &err), -1);
	cr_assert_str_eq(err->msg, "linux.resources.memory.swap: needs memory.limit on cgroup v2");
	vs_err_free(&err);
	cgroup_resources_free(r);
}

Test(cgroup_files, v2_cpu)
{
	write_with(cg_v2_cpu, true,
		   "{\"cpu\": {\"shares\": 2048, \"quota\": 20000, \"period\": 50000,"
		   " \"burst\": 1000, \"idle\": 1}}");
	assert_file("cpu.weight", "174");
	assert_file("cpu.max", "20000 50000");
	assert_file("cpu.max.burst", "1000");
	assert_file("cpu.idle", "1");
}

Test(cgroup_files, v2_cpu_quota_alone_keeps_period)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/cpu.max", dir);
	FILE *f = fopen(path, "w");
	fputs("max 250000", f);
	fclose(f);
	write_with(cg_v2_cpu, true, "{\"cpu\": {\"quota\": -1}}");
	assert_file("cpu.max", "max 250000");
}

Test(cgroup_files, v2_realtime_is_refused)
{
	struct cg_dir d = {.dir = dir, .v2 = true};
	struct cgroup_resources *r = resources("{\"cpu\": {\"realtimeRuntime\": 1000}}");
	vs_err_t err = NULL;
	cr_assert_eq(cg_v2_cpu(&d, r, &err), -1);
	cr_assert_str_eq(err->msg, "linux.resources.cpu.realtimeRuntime: realtime scheduling "
				   "limits need cgroup v1");
	vs_err_free(&err);
	cgroup_resources_free(r);
}

Test(cgroup_files, v2_io)
{
	write_with(cg_v2_io, true, "{\"blockIO\": {\"weight\": 1000}}");
	assert_file("io.weight", "default 10000");
	write_with(cg_v2_io, true,
		   "{\"blockIO\": {\"throttleWriteIOPSDevice\": [{\"major\": 8, \"minor\": 16,"
		   " \"rate\": 300}]}}");
	assert_file("io.max", "8:16 wiops=300");
}

Test(cgroup_files, v2_io_rate_zero_lifts_the_limit)
{
	write_with(cg_v2_io, true,
		   "{\"blockIO\": {\"throttleReadBpsDevice\": [{\"major\": 8, \"minor\": 0,"
		   " \"rate\": 0}]}}");
	assert_file("io.max", "8:0 rbps=max");
}

Test(cgroup_files, pids_and_cpuset_and_hugetlb)
{
	write_with(cg_pids_apply, true, "{\"pids\": {\"limit\": 0}}");
	assert_file("pids.max", "max");
	write_with(cg_v2_cpuset, true, "{\"cpu\": {\"cpus\": \"0-1\", \"mems\": \"0\"}}");
	assert_file("cpuset.cpus", "0-1");
	assert_file("cpuset.mems", "0");
	write_with(cg_hugetlb_apply, true,
		   "{\"hugepageLimits\": [{\"pageSize\": \"2MB\", \"limit\": 8388608}]}");
	assert_file("hugetlb.2MB.max", "8388608");
	write_with(cg_hugetlb_apply, false,
		   "{\"hugepageLimits\": [{\"pageSize\": \"1GB\", \"limit\": 0}]}");
	assert_file("hugetlb.1GB.limit_in_bytes", "0");
}

Test(cgroup_files, check_before_update)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/memory.current", dir);
	FILE *f = fopen(path, "w");
	fputs("50000000\n", f);
	fclose(f);
	struct cg_dir d = {.dir = dir, .v2 = true};
	struct cgroup_resources *r =
	    resources("{\"memory\": {\"limit\": 40000000, \"checkBeforeUpdate\": true}}");
	vs_err_t err = NULL;
	cr_assert_eq(cg_v2_memory(&d, r, &err), -1);
	cr_assert_str_eq(err->msg, "linux.resources.memory.limit: 40000000 is below the 50000000 "
				   "bytes the container uses now (memory.checkBeforeUpdate)");
	vs_err_free(&err);
	assert_file("memory.max", "");
	cgroup_resources_free(r);
	/* above the usage it goes through; without the flag the kernel decides */
	write_with(cg_v2_memory, true,
		   "{\"memory\": {\"limit\": 60000000, \"checkBeforeUpdate\": true}}");
	assert_file("memory.max", "60000000");
	write_with(cg_v2_memory, true, "{\"memory\": {\"limit\": 40000000}}");
	assert_file("memory.max", "40000000");
}
