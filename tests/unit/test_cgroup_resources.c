/* linux.resources parsing: every bad value names its field; good values land in the struct.
 * Also the v1 -> v2 value conversions. */
#include <criterion/criterion.h>
#include <string.h>

#include "sandbox/cgroup_internal.h"

static struct cgroup_resources *parse_ok(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	cr_assert_not_null(j, "fixture JSON: %s", jerr.text);
	struct cgroup_resources *r = NULL;
	vs_err_t err = NULL;
	int rc = cgroup_resources_parse(j, "linux.resources", &r, &err);
	cr_assert_eq(rc, 0, "%s", err ? err->msg : "");
	json_decref(j);
	return r;
}

/* Parses text and checks the error message is exactly want. */
static void parse_fails(const char *text, const char *want)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	cr_assert_not_null(j, "fixture JSON: %s", jerr.text);
	struct cgroup_resources *r = NULL;
	vs_err_t err = NULL;
	cr_assert_eq(cgroup_resources_parse(j, "linux.resources", &r, &err), -1, "accepted %s",
		     text);
	cr_assert_null(r);
	cr_assert_str_eq(err->msg, want);
	vs_err_free(&err);
	json_decref(j);
}

Test(cgroup_resources, null_means_no_limits)
{
	struct cgroup_resources *r = NULL;
	vs_err_t err = NULL;
	cr_assert_eq(cgroup_resources_parse(NULL, "linux.resources", &r, &err), 0);
	cr_assert_not(r->mem.limit.set);
	cr_assert_not(r->pids_limit.set);
	cr_assert_not(r->has_devices);
	cgroup_resources_free(r);
}

Test(cgroup_resources, not_an_object)
{
	parse_fails("[1]", "linux.resources: must be an object");
}

Test(cgroup_resources, full_config_parses)
{
	struct cgroup_resources *r = parse_ok(
	    "{\"memory\": {\"limit\": 536870912, \"reservation\": 1048576, \"swap\": 1073741824,"
	    "  \"kernel\": -1, \"kernelTCP\": 4096, \"swappiness\": 10, \"disableOOMKiller\": "
	    "true},"
	    " \"cpu\": {\"shares\": 1024, \"quota\": 50000, \"period\": 100000, \"cpus\": \"0-1\","
	    "  \"mems\": \"0\", \"realtimeRuntime\": 950000, \"realtimePeriod\": 1000000, "
	    "\"idle\": 1},"
	    " \"pids\": {\"limit\": 64},"
	    " \"blockIO\": {\"weight\": 500, \"leafWeight\": 300,"
	    "  \"weightDevice\": [{\"major\": 8, \"minor\": 0, \"weight\": 600}],"
	    "  \"throttleReadBpsDevice\": [{\"major\": 8, \"minor\": 0, \"rate\": 1048576}],"
	    "  \"throttleWriteIOPSDevice\": [{\"major\": 8, \"minor\": 16, \"rate\": 100}]},"
	    " \"hugepageLimits\": [{\"pageSize\": \"2MB\", \"limit\": 4194304}],"
	    " \"devices\": [{\"allow\": false, \"access\": \"rwm\"},"
	    "  {\"allow\": true, \"type\": \"c\", \"major\": 1, \"minor\": 3, \"access\": \"rw\"},"
	    "  {\"allow\": true, \"type\": \"b\", \"major\": 8}],"
	    " \"unified\": {\"memory.high\": \"max\", \"io.weight\": \"default 100\"},"
	    " \"network\": {\"classID\": 1048577, \"priorities\": [{\"name\": \"eth0\", "
	    "\"priority\": 5}]},"
	    " \"rdma\": {\"mlx5_1\": {\"hcaHandles\": 3, \"hcaObjects\": 10000}}}");
	cr_assert(r->mem.limit.set);
	cr_assert_eq(r->mem.limit.v, 536870912);
	cr_assert_eq(r->mem.swap.v, 1073741824);
	cr_assert_eq(r->mem.kernel.v, -1);
	cr_assert_eq(r->mem.swappiness.v, 10);
	cr_assert(r->mem.has_disable_oom && r->mem.disable_oom);
	cr_assert_eq(r->cpu.shares.v, 1024);
	cr_assert_eq(r->cpu.quota.v, 50000);
	cr_assert_eq(r->cpu.period.v, 100000);
	cr_assert_str_eq(r->cpu.cpus, "0-1");
	cr_assert_str_eq(r->cpu.mems, "0");
	cr_assert_eq(r->cpu.rt_runtime.v, 950000);
	cr_assert_eq(r->cpu.idle.v, 1);
	cr_assert_eq(r->pids_limit.v, 64);
	cr_assert_eq(r->blkio.weight.v, 500);
	cr_assert_eq(r->blkio.n_wdev, 1);
	cr_assert_eq(r->blkio.wdev[0].weight.v, 600);
	cr_assert_not(r->blkio.wdev[0].leaf_weight.set);
	cr_assert_eq(r->blkio.n_thr[CG_THR_READ_BPS], 1);
	cr_assert_eq(r->blkio.thr[CG_THR_READ_BPS][0].rate, 1048576);
	cr_assert_eq(r->blkio.n_thr[CG_THR_WRITE_IOPS], 1);
	cr_assert_eq(r->blkio.thr[CG_THR_WRITE_IOPS][0].minor, 16);
	cr_assert_eq(r->n_huge, 1);
	cr_assert_str_eq(r->huge[0].size, "2MB");
	cr_assert_eq(r->huge[0].limit, 4194304);
	cr_assert(r->has_devices);
	cr_assert_eq(r->n_dev, 3);
	cr_assert_eq(r->dev[0].type, 'a');
	cr_assert_eq(r->dev[0].major, -1);
	cr_assert_eq(r->dev[0].access, CG_ACC_ALL);
	cr_assert_not(r->dev[0].allow);
	cr_assert_eq(r->dev[1].access, CG_ACC_READ | CG_ACC_WRITE);
	cr_assert_eq(r->dev[2].minor, -1);
	cr_assert_eq(r->dev[2].access, CG_ACC_ALL);
	cr_assert_eq(r->n_unified, 2);
	cr_assert_eq(r->net.classid.v, 1048577);
	cr_assert_str_eq(r->net.prio[0].ifname, "eth0");
	cr_assert_eq(r->n_rdma, 1);
	cr_assert_eq(r->rdma[0].handles.v, 3);
	cgroup_resources_free(r);
}

Test(cgroup_resources, zero_means_unset_and_minus_one_unlimited)
{
	struct cgroup_resources *r = parse_ok("{\"memory\": {\"limit\": 0, \"swap\": -1},"
					      " \"cpu\": {\"quota\": -1, \"period\": 0},"
					      " \"pids\": {\"limit\": 0}}");
	cr_assert_not(r->mem.limit.set);
	cr_assert(r->mem.swap.set);
	cr_assert_eq(r->mem.swap.v, -1);
	cr_assert_eq(r->cpu.quota.v, -1);
	cr_assert_not(r->cpu.period.set);
	cr_assert(r->pids_limit.set);
	cr_assert_eq(r->pids_limit.v, 0);
	cgroup_resources_free(r);
}

Test(cgroup_resources, memory_limit_type)
{
	parse_fails("{\"memory\": {\"limit\": \"1G\"}}",
		    "linux.resources.memory.limit: must be an integer");
}

Test(cgroup_resources, memory_limit_range)
{
	parse_fails("{\"memory\": {\"limit\": -2}}",
		    "linux.resources.memory.limit: must be -1 (unlimited) or a number of bytes");
}

Test(cgroup_resources, memory_section_type)
{
	parse_fails("{\"memory\": 5}", "linux.resources.memory: must be an object");
}

Test(cgroup_resources, memory_swap_below_limit)
{
	parse_fails("{\"memory\": {\"limit\": 2000000, \"swap\": 1000000}}",
		    "linux.resources.memory.swap: must be at least memory.limit (it counts memory "
		    "plus swap)");
}

Test(cgroup_resources, memory_swappiness_range)
{
	parse_fails("{\"memory\": {\"swappiness\": 101}}",
		    "linux.resources.memory.swappiness: must be an integer from 0 to 100");
}

Test(cgroup_resources, memory_oom_killer_type)
{
	parse_fails("{\"memory\": {\"disableOOMKiller\": 1}}",
		    "linux.resources.memory.disableOOMKiller: must be a boolean");
}

Test(cgroup_resources, cpu_shares_range)
{
	parse_fails("{\"cpu\": {\"shares\": 1}}",
		    "linux.resources.cpu.shares: must be an integer from 2 to 262144");
	parse_fails("{\"cpu\": {\"shares\": 262145}}",
		    "linux.resources.cpu.shares: must be an integer from 2 to 262144");
}

Test(cgroup_resources, cpu_shares_type)
{
	parse_fails("{\"cpu\": {\"shares\": 1.5}}",
		    "linux.resources.cpu.shares: must be an integer");
}

Test(cgroup_resources, cpu_quota_range)
{
	parse_fails("{\"cpu\": {\"quota\": 999}}",
		    "linux.resources.cpu.quota: must be -1 (unlimited) or at least 1000 "
		    "(microseconds)");
}

Test(cgroup_resources, cpu_period_range)
{
	parse_fails("{\"cpu\": {\"period\": 2000000}}",
		    "linux.resources.cpu.period: must be an integer from 1000 to 1000000 "
		    "(microseconds)");
}

Test(cgroup_resources, cpu_cpus_syntax)
{
	parse_fails(
	    "{\"cpu\": {\"cpus\": \"0-1; rm\"}}",
	    "linux.resources.cpu.cpus: must be a list of numbers and ranges, e.g. \"0-3,6\"");
	parse_fails("{\"cpu\": {\"mems\": 0}}", "linux.resources.cpu.mems: must be a string");
}

Test(cgroup_resources, cpu_idle_range)
{
	parse_fails("{\"cpu\": {\"idle\": 2}}",
		    "linux.resources.cpu.idle: must be an integer from 0 to 1");
}

Test(cgroup_resources, pids_limit_required)
{
	parse_fails("{\"pids\": {}}",
		    "linux.resources.pids.limit: is required (the maximum number of tasks)");
}

Test(cgroup_resources, pids_limit_range)
{
	parse_fails("{\"pids\": {\"limit\": -5}}",
		    "linux.resources.pids.limit: must be -1 or 0 (unlimited) or a number of tasks");
	parse_fails("{\"pids\": {\"limit\": \"10\"}}",
		    "linux.resources.pids.limit: must be an integer");
}

Test(cgroup_resources, blkio_weight_range)
{
	parse_fails("{\"blockIO\": {\"weight\": 5}}",
		    "linux.resources.blockIO.weight: must be an integer from 10 to 1000");
}

Test(cgroup_resources, blkio_weight_device_fields)
{
	parse_fails("{\"blockIO\": {\"weightDevice\": [{\"minor\": 0, \"weight\": 100}]}}",
		    "linux.resources.blockIO.weightDevice[0].major: is required (device number)");
	parse_fails(
	    "{\"blockIO\": {\"weightDevice\": [{\"major\": 8, \"minor\": 0, \"weight\": 1}]}}",
	    "linux.resources.blockIO.weightDevice[0].weight: must be an integer from 10 to "
	    "1000");
	parse_fails("{\"blockIO\": {\"weightDevice\": [7]}}",
		    "linux.resources.blockIO.weightDevice[0]: must be an object");
}

Test(cgroup_resources, blkio_throttle_fields)
{
	parse_fails("{\"blockIO\": {\"throttleWriteBpsDevice\": [{\"major\": 8, \"minor\": 0}]}}",
		    "linux.resources.blockIO.throttleWriteBpsDevice[0].rate: is required (bytes or "
		    "operations per second)");
	parse_fails(
	    "{\"blockIO\": {\"throttleReadIOPSDevice\": [{\"major\": 8, \"minor\": 0,"
	    " \"rate\": -1}]}}",
	    "linux.resources.blockIO.throttleReadIOPSDevice[0].rate: must be a non-negative "
	    "integer");
	parse_fails(
	    "{\"blockIO\": {\"throttleReadBpsDevice\": [{\"major\": 5000, \"minor\": 0,"
	    " \"rate\": 1}]}}",
	    "linux.resources.blockIO.throttleReadBpsDevice[0].major: must be an integer from "
	    "0 to 4095");
}

Test(cgroup_resources, hugepage_fields)
{
	parse_fails("{\"hugepageLimits\": [{\"pageSize\": \"2M\", \"limit\": 1}]}",
		    "linux.resources.hugepageLimits[0].pageSize: must be a size like \"2MB\" or "
		    "\"1GB\"");
	parse_fails("{\"hugepageLimits\": [{\"pageSize\": \"2MB\"}]}",
		    "linux.resources.hugepageLimits[0].limit: is required (bytes)");
	parse_fails("{\"hugepageLimits\": {}}", "linux.resources.hugepageLimits: must be an array");
}

Test(cgroup_resources, device_rule_fields)
{
	parse_fails("{\"devices\": [{\"access\": \"rwm\"}]}",
		    "linux.resources.devices[0].allow: is required (true or false)");
	parse_fails("{\"devices\": [{\"allow\": true}, {\"allow\": true, \"type\": \"x\"}]}",
		    "linux.resources.devices[1].type: must be \"a\", \"b\" or \"c\"");
	parse_fails("{\"devices\": [{\"allow\": true, \"access\": \"rwx\"}]}",
		    "linux.resources.devices[0].access: must be a combination of r, w and m");
	parse_fails("{\"devices\": [{\"allow\": true, \"access\": \"rr\"}]}",
		    "linux.resources.devices[0].access: must be a combination of r, w and m");
	parse_fails("{\"devices\": [{\"allow\": true, \"major\": -2}]}",
		    "linux.resources.devices[0].major: must be an integer from -1 to 4095");
	parse_fails("{\"devices\": [{\"allow\": true, \"minor\": 1048576}]}",
		    "linux.resources.devices[0].minor: must be an integer from -1 to 1048575");
}

Test(cgroup_resources, unified_keys_are_file_names)
{
	parse_fails("{\"unified\": {\"../../etc/passwd\": \"x\"}}",
		    "linux.resources.unified: `../../etc/passwd` is not a cgroup file name");
	parse_fails("{\"unified\": {\"..\": \"x\"}}",
		    "linux.resources.unified: `..` is not a cgroup file name");
	parse_fails("{\"unified\": {\"memory/max\": \"x\"}}",
		    "linux.resources.unified: `memory/max` is not a cgroup file name");
	parse_fails("{\"unified\": {\"memory.max\": 5}}",
		    "linux.resources.unified.memory.max: must be a string");
}

Test(cgroup_resources, network_fields)
{
	parse_fails("{\"network\": {\"classID\": -1}}",
		    "linux.resources.network.classID: must be an integer from 0 to 4294967295");
	parse_fails("{\"network\": {\"priorities\": [{\"name\": \"a/b\", \"priority\": 1}]}}",
		    "linux.resources.network.priorities[0].name: must be an interface name");
}

Test(cgroup_resources, rdma_fields)
{
	parse_fails("{\"rdma\": {\"mlx\": {\"hcaHandles\": \"3\"}}}",
		    "linux.resources.rdma.mlx.hcaHandles: must be an integer");
}

Test(cgroup_convert, shares_to_weight)
{
	/* the fit runc >= 1.3.2 and crun >= 1.23 use; reference values from its formula */
	cr_assert_eq(cg_shares_to_weight(0), 0);
	cr_assert_eq(cg_shares_to_weight(2), 1);
	cr_assert_eq(cg_shares_to_weight(3), 2);
	cr_assert_eq(cg_shares_to_weight(10), 4);
	cr_assert_eq(cg_shares_to_weight(100), 17);
	cr_assert_eq(cg_shares_to_weight(256), 35);
	cr_assert_eq(cg_shares_to_weight(512), 59);
	cr_assert_eq(cg_shares_to_weight(1000), 99);
	cr_assert_eq(cg_shares_to_weight(1024), 100);
	cr_assert_eq(cg_shares_to_weight(2048), 174);
	cr_assert_eq(cg_shares_to_weight(4096), 303);
	cr_assert_eq(cg_shares_to_weight(10000), 627);
	cr_assert_eq(cg_shares_to_weight(100000), 4340);
	cr_assert_eq(cg_shares_to_weight(262143), 10000);
	cr_assert_eq(cg_shares_to_weight(262144), 10000);
	cr_assert_eq(cg_shares_to_weight(1u << 30), 10000);
}

Test(cgroup_convert, shares_to_weight_is_monotonic_and_in_range)
{
	uint64_t prev = 1;
	for (uint64_t s = 2; s <= 262144; s++) {
		uint64_t w = cg_shares_to_weight(s);
		cr_assert(w >= prev && w >= 1 && w <= 10000, "shares %llu -> %llu",
			  (unsigned long long)s, (unsigned long long)w);
		prev = w;
	}
}

Test(cgroup_convert, blkio_to_io_weight)
{
	cr_assert_eq(cg_blkio_to_io_weight(0), 0);
	cr_assert_eq(cg_blkio_to_io_weight(10), 1);
	cr_assert_eq(cg_blkio_to_io_weight(500), 1 + 490 * 9999 / 990);
	cr_assert_eq(cg_blkio_to_io_weight(1000), 10000);
}

/* A rootless container without a cgroup: the warning names what the config asked for. */
Test(cgroup_resources, limits_names_the_sections_asked_for)
{
	char buf[160];
	struct cgroup_resources *r =
		parse_ok("{\"memory\": {\"limit\": 1048576}, \"pids\": {\"limit\": 10}, "
			 "\"devices\": [{\"allow\": false, \"access\": \"rwm\"}]}");
	cr_assert_eq(cgroup_resources_limits(r, buf, sizeof(buf)), 2);
	cr_assert_str_eq(buf, "memory, pids");
	cgroup_resources_free(r);

	/* podman's deny-all device rule needs no cgroup; an allow rule or a partial deny does */
	r = parse_ok("{\"devices\": [{\"allow\": false, \"access\": \"rwm\"}]}");
	cr_assert_eq(cgroup_resources_limits(r, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "");
	cgroup_resources_free(r);
	r = parse_ok("{\"devices\": [{\"allow\": false, \"type\": \"c\", \"major\": 1, "
		     "\"minor\": 3, \"access\": \"w\"}], \"cpu\": {\"cpus\": \"0\"}}");
	cr_assert_eq(cgroup_resources_limits(r, buf, sizeof(buf)), 2);
	cr_assert_str_eq(buf, "cpu, devices");
	cgroup_resources_free(r);

	cr_assert_eq(cgroup_resources_limits(NULL, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "");
}
