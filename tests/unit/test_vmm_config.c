/* The VM config: `vessel vm run`'s arguments, the device flags from the table of kinds. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/ratelimit.h"
#include "vmm/config.h"
#include "vmm/exit_status.h"
#include "vmm/virtio/blk_spec.h"
#include "vmm/virtio/net_spec.h"
#include "vmm/virtio/rng_spec.h"

struct parsed {
	struct vm_config c;
	bool help;
};

static int parse(struct parsed *o, vs_err_t *err, int argc, char **argv)
{
	vm_config_init(&o->c);
	int status = vm_config_from_argv(&o->c, argc, argv, &o->help, err);
	return status ? -1 : 0;
}

#define ARGV(...) ((char *[]){"run", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){"run", __VA_ARGS__}) / sizeof(char *)))

Test(options, defaults)
{
	struct parsed p;
	vs_err_t err = NULL;
	char *argv[] = {"run", "--hugepages", NULL};
	cr_assert_eq(parse(&p, &err, 1, argv), 0);
	cr_assert_eq(p.c.cpus, 1);
	cr_assert_eq(p.c.memory, 128ULL << 20);
	cr_assert_null(p.c.kernel);
	cr_assert_eq(p.c.ncommand, 0);
	cr_assert_not(p.c.hugepages);
}

Test(options, all_and_command)
{
	struct parsed p;
	vs_err_t err = NULL;
	char *argv[] = {"run",	     "--hugepages", "--kernel", "k", "--initrd", "i",
			"--cmdline", "c",	    "--cpus",	"4", "--memory", "1G",
			"--",	     "sh",	    "-c",	"x", NULL};
	cr_assert_eq(parse(&p, &err, (int)(sizeof(argv) / sizeof(argv[0])) - 1, argv), 0, "%s",
		     err ? err->msg : "");
	cr_assert_str_eq(p.c.kernel, "k");
	cr_assert_str_eq(p.c.initrd, "i");
	cr_assert_str_eq(p.c.cmdline, "c");
	cr_assert_eq(p.c.cpus, 4);
	cr_assert_eq(p.c.memory, 1ULL << 30);
	cr_assert_eq(p.c.ncommand, 3);
	cr_assert_str_eq(p.c.command[1], "-c");
	cr_assert(p.c.hugepages);
	vm_config_free(&p.c);
}

static void expect_usage(int argc, char **argv, const char *needle)
{
	struct parsed p;
	vs_err_t err = NULL;
	cr_assert_eq(parse(&p, &err, argc, argv), -1);
	cr_assert(strstr(err->msg, needle), "`%s` lacks `%s`", err->msg, needle);
	vs_err_free(&err);
	vm_config_free(&p.c);
}

Test(options, usage_errors)
{
	expect_usage(ARGC("--cpus", "0"), ARGV("--cpus", "0"), "at least one vCPU");
	expect_usage(ARGC("--cpus", "-1"), ARGV("--cpus", "-1"), "positive number");
	expect_usage(ARGC("--cpus", "2x"), ARGV("--cpus", "2x"), "positive number");
	expect_usage(ARGC("--cpus", "99999999999999999999"), ARGV("--cpus", "99999999999999999999"),
		     "positive number");
	expect_usage(ARGC("--cpus", "5000"), ARGV("--cpus", "5000"), "too many");
	expect_usage(ARGC("--memory", "lots"), ARGV("--memory", "lots"), "not a size");
	expect_usage(ARGC("--memory", "12Q"), ARGV("--memory", "12Q"), "not a size");
	expect_usage(ARGC("--memory", ""), ARGV("--memory", ""), "not a size");
	expect_usage(ARGC("--memory", "-5M"), ARGV("--memory", "-5M"), "not a size");
	expect_usage(ARGC("--bogus"), ARGV("--bogus"), "unknown option `--bogus`");
	expect_usage(ARGC("--kernel"), ARGV("--kernel"), "needs a value");
	expect_usage(ARGC("stray"), ARGV("stray"), "unexpected argument `stray`");
	expect_usage(ARGC("--demo", "--kernel", "k"), ARGV("--demo", "--kernel", "k"), "--demo");
}

Test(options, help)
{
	struct parsed p;
	vs_err_t err = NULL;
	cr_assert_eq(parse(&p, &err, ARGC("--help"), ARGV("--help")), 0);
	cr_assert(p.help);
	cr_assert(strstr(vm_run_help, "exit status"));
	cr_assert(strstr(vm_run_help, "--memory SIZE"));
}

static const struct device_kind *kind(const char *flag)
{
	const struct device_kind *k = device_kind_by_flag(flag);
	cr_assert_not_null(k, "%s is a device flag", flag);
	return k;
}

Test(options, device_flags_come_from_the_table_parsed_in_order)
{
	struct parsed p;
	vs_err_t err = NULL;
	char *argv[] = {"run",	 "--net",  "tap=t0,mac=02:00:00:00:00:01",
			"--rng", "--disk", "/a.img,ro",
			"--rng", "--disk", "/b.img,id=b",
			NULL};
	cr_assert_eq(parse(&p, &err, (int)(sizeof(argv) / sizeof(argv[0])) - 1, argv), 0, "%s",
		     err ? err->msg : "");
	cr_assert_eq(p.c.ndevices, 4, "--rng counts once");
	cr_assert_eq(p.c.devices[0].kind, kind("--net"));
	const struct net_spec *n = p.c.devices[0].config;
	cr_assert_str_eq(n->tap, "t0");
	cr_assert(n->has_mac);
	cr_assert_eq(p.c.devices[1].kind, kind("--rng"));
	const struct rng_spec *r = p.c.devices[1].config;
	cr_assert(rl_unlimited(&r->rl), "a bare --rng is unlimited");
	const struct blk_spec *a = p.c.devices[2].config, *b = p.c.devices[3].config;
	cr_assert_str_eq(a->path, "/a.img");
	cr_assert(a->ro);
	cr_assert_str_eq(b->path, "/b.img");
	cr_assert_str_eq(b->id, "b");
	cr_assert_str_eq(p.c.devices[3].origin, "--disk /b.img,id=b");
	cr_assert_eq(vm_config_count(&p.c, kind("--disk")), 2);
	vm_config_free(&p.c);
}

Test(options, a_bad_device_spec_is_bad_input_naming_the_flag)
{
	struct vm_config c;
	vm_config_init(&c);
	vs_err_t err = NULL;
	bool help;
	char *argv[] = {"run", "--disk", "/x.img,ro=1", NULL};
	cr_assert_eq(vm_config_from_argv(&c, 3, argv, &help, &err), VM_EXIT_ERROR);
	cr_assert_str_eq(err->msg, "--disk /x.img,ro=1: ro: takes no value");
	cr_assert_eq(c.ndevices, 0, "nothing half-parsed is left");
	vs_err_free(&err);
	vm_config_free(&c);
}

Test(options, at_most_16_virtio_devices)
{
	struct vm_config c;
	vm_config_init(&c);
	vs_err_t err = NULL;
	bool help;
	char *argv[2 + 2 * 17] = {"run"};
	int argc = 1;
	for (int i = 0; i < 16; i++) {
		argv[argc++] = "--disk";
		argv[argc++] = "/d.img";
	}
	argv[argc++] = "--rng";
	cr_assert_eq(vm_config_from_argv(&c, argc, argv, &help, &err), VM_EXIT_USAGE);
	cr_assert_str_eq(err->msg, "--rng: more than 16 virtio devices");
	vs_err_free(&err);
	vm_config_free(&c);
}

Test(options, every_kind_is_well_formed)
{
	for (size_t i = 0; i < device_nkinds; i++) {
		const struct device_kind *k = device_kinds[i];
		cr_assert_not_null(k->name);
		cr_assert_not_null(k->create, "%s", k->name);
		cr_assert_eq(device_kind_by_name(k->name), k, "%s: names are unique", k->name);
		if (k->cli_flag) {
			cr_assert_eq(strncmp(k->cli_flag, "--", 2), 0, "%s", k->name);
			cr_assert_eq(device_kind_by_flag(k->cli_flag), k);
			cr_assert(strstr(vm_run_help, k->cli_flag), "%s is in --help", k->cli_flag);
		}
		if (k->cli_value)
			cr_assert_not_null(k->from_cli, "%s", k->name);
		cr_assert(!k->builtin || !k->cli_flag, "%s: builtin kinds take no config", k->name);
	}
}

/* ---------------------------------------------------------------- config file */

static int from_json(struct vm_config *c, const char *text, vs_err_t *err)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	cr_assert_not_null(j, "test JSON: %s", jerr.text);
	vm_config_init(c);
	int r = vm_config_from_json(c, j, err);
	json_decref(j);
	return r;
}

Test(config_file, firecracker_objects_fill_the_same_config)
{
	struct vm_config c;
	vs_err_t err = NULL;
	const char *text =
	    "{\"boot-source\": {\"kernel_image_path\": \"/k\", \"initrd_path\": \"/i\","
	    "  \"boot_args\": \"console=ttyS0\"},"
	    " \"machine-config\": {\"vcpu_count\": 2, \"mem_size_mib\": 256, \"smt\": false,"
	    "  \"huge_pages\": \"2M\"},"
	    " \"drives\": [{\"drive_id\": \"data\", \"path_on_host\": \"/d.img\","
	    "   \"is_root_device\": false, \"is_read_only\": true},"
	    "  {\"drive_id\": \"rootfs\", \"path_on_host\": \"/r.img\", \"is_root_device\": true,"
	    "   \"is_read_only\": false, \"cache_type\": \"Writeback\","
	    "   \"rate_limiter\": {\"bandwidth\": {\"size\": 1000, \"refill_time\": 100},"
	    "                    \"ops\": {\"size\": 10, \"refill_time\": 1000,"
	    "                             \"one_time_burst\": 5}}}],"
	    " \"network-interfaces\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\","
	    "   \"guest_mac\": \"06:00:AC:10:00:02\","
	    "   \"tx_rate_limiter\": {\"bandwidth\": {\"size\": 500, \"refill_time\": 10}}}],"
	    " \"entropy\": {}}";
	cr_assert_eq(from_json(&c, text, &err), 0, "%s", err ? err->msg : "");
	cr_assert_str_eq(c.kernel, "/k");
	cr_assert_str_eq(c.initrd, "/i");
	cr_assert_str_eq(c.cmdline, "console=ttyS0 root=/dev/vda rw", "Firecracker's root=");
	cr_assert_eq(c.cpus, 2);
	cr_assert_eq(c.memory, 256ULL << 20);
	cr_assert(c.hugepages);
	cr_assert_eq(c.ndevices, 4);
	const struct blk_spec *root = c.devices[0].config, *data = c.devices[1].config;
	cr_assert_str_eq(root->path, "/r.img", "the root drive is the first (vda)");
	cr_assert_not(root->ro);
	cr_assert_eq(root->rl.bw.size, 1000);
	cr_assert_eq(root->rl.bw.refill_time_ms, 100);
	cr_assert_eq(root->rl.ops.one_time_burst, 5);
	cr_assert_not(root->has_id, "drive_id is the API's name, not the disk's serial");
	cr_assert_str_eq(data->path, "/d.img");
	cr_assert(data->ro);
	cr_assert_str_eq(c.devices[1].origin, "drives[0]");
	const struct net_spec *n = c.devices[2].config;
	cr_assert_str_eq(n->tap, "tap0");
	cr_assert(n->has_mac);
	cr_assert_eq(n->mac[2], 0xac);
	cr_assert(rl_unlimited(&n->rl));
	cr_assert(n->has_tx_rl);
	cr_assert_eq(n->tx_rl.bw.size, 500);
	cr_assert_eq(c.devices[3].kind, device_kind_by_name("entropy"));
	vm_config_free(&c);
}

static void expect_json_error(const char *text, const char *message)
{
	struct vm_config c;
	vs_err_t err = NULL;
	cr_assert_eq(from_json(&c, text, &err), -1, "%s", text);
	cr_assert_str_eq(err->msg, message);
	vs_err_free(&err);
	vm_config_free(&c);
}

#define BOOT "\"boot-source\": {\"kernel_image_path\": \"/k\"}"

Test(config_file, errors_name_the_field)
{
	expect_json_error("[]", "must be a JSON object");
	expect_json_error("{}", "boot-source: is required (an object)");
	expect_json_error("{\"boot-source\": {}}",
			  "boot-source.kernel_image_path: is required (a string)");
	expect_json_error("{" BOOT ", \"mmds-config\": {}}",
			  "mmds-config: not supported by vessel yet");
	expect_json_error("{" BOOT ", \"vsock\": {}}",
			  "vsock: guest_cid: is required (an integer)");
	expect_json_error("{" BOOT ", \"disks\": []}",
			  "disks: unknown member (boot-source, machine-config, drives, "
			  "network-interfaces, entropy, vsock, balloon, fs)");
	expect_json_error("{" BOOT
			  ", \"machine-config\": {\"vcpu_count\": 0, \"mem_size_mib\": 1}}",
			  "machine-config.vcpu_count: must be an integer from 1 to 4096");
	expect_json_error("{" BOOT ", \"machine-config\": {\"vcpu_count\": 1}}",
			  "machine-config.mem_size_mib: is required (an integer)");
	expect_json_error("{" BOOT ", \"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": "
			  "128, \"huge_pages\": \"Transparent\"}}",
			  "machine-config.huge_pages: `Transparent`: vessel takes None or 2M");
	expect_json_error("{" BOOT
			  ", \"drives\": [{\"drive_id\": \"a\", \"is_root_device\": false}]}",
			  "drives[0]: path_on_host: is required (a string)");
	expect_json_error("{" BOOT ", \"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"/x\","
			  " \"is_root_device\": false, \"io_engine\": \"Fast\"}]}",
			  "drives[0]: io_engine: `Fast`: must be Sync or Async");
	expect_json_error("{" BOOT ", \"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"/x\","
			  " \"is_root_device\": true}, {\"drive_id\": \"b\", \"path_on_host\": "
			  "\"/y\", \"is_root_device\": true}]}",
			  "drives[1].is_root_device: drives[0] is the root device already");
	expect_json_error(
	    "{" BOOT ", \"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"/x\","
	    " \"is_root_device\": false, \"rate_limiter\": {\"bandwidth\": "
	    "{\"size\": 10}}}]}",
	    "drives[0]: rate_limiter.bandwidth.refill_time: is required (an integer)");
	expect_json_error(
	    "{" BOOT ", \"network-interfaces\": [{\"iface_id\": \"e\", "
	    "\"host_dev_name\": \"t\", \"guest_mac\": \"zz\"}]}",
	    "network-interfaces[0]: guest_mac: mac: `zz` is not a MAC address (use six "
	    "hex pairs, e.g. 52:54:00:12:34:56)");
	expect_json_error("{" BOOT ", \"network-interfaces\": [{\"iface_id\": \"e\", "
			  "\"host_dev_name\": \"t\", \"mtu\": 9000}]}",
			  "network-interfaces[0]: mtu: not supported yet (the guest uses 1500)");
	expect_json_error("{" BOOT ", \"entropy\": {\"rate_limiter\": {\"ops\": "
			  "{\"size\": 10}}}}",
			  "entropy: rate_limiter.ops.refill_time: is required (an integer)");
	expect_json_error("{" BOOT ", \"entropy\": {\"bytes\": 1}}",
			  "entropy: bytes: unknown or unsupported member");
}

Test(config_file, entropy_takes_firecrackers_rate_limiter)
{
	struct vm_config c;
	vs_err_t err = NULL;
	cr_assert_eq(from_json(&c,
			       "{" BOOT ", \"entropy\": {\"rate_limiter\": {\"bandwidth\": "
			       "{\"size\": 4096, \"refill_time\": 1000}, \"ops\": {\"size\": 8, "
			       "\"one_time_burst\": 2, \"refill_time\": 500}}}}",
			       &err),
		     0, "%s", err ? err->msg : "");
	cr_assert_eq(c.ndevices, 1);
	const struct rng_spec *r = c.devices[0].config;
	cr_assert_eq(r->rl.bw.size, 4096);
	cr_assert_eq(r->rl.bw.refill_time_ms, 1000);
	cr_assert_eq(r->rl.ops.size, 8);
	cr_assert_eq(r->rl.ops.one_time_burst, 2);
	cr_assert_eq(r->rl.ops.refill_time_ms, 500);
	vm_config_free(&c);
}

/* --rng stays a switch, and takes a spec as --rng=SPEC or as the next word when that word
 * starts with one of its keys (--disk and --net take theirs always). */
Test(options, rng_takes_an_optional_rate_spec)
{
	struct parsed p;
	vs_err_t err = NULL;
	char *argv[] = {"run", "--rng", "bw=4K,ops=10", "--disk", "/a.img", NULL};
	cr_assert_eq(parse(&p, &err, 5, argv), 0, "%s", err ? err->msg : "");
	cr_assert_eq(p.c.ndevices, 2);
	const struct rng_spec *r = p.c.devices[0].config;
	cr_assert_eq(r->rl.bw.size, 4096);
	cr_assert_eq(r->rl.ops.size, 10);
	cr_assert_str_eq(p.c.devices[0].origin, "--rng bw=4K,ops=10");
	cr_assert_eq(p.c.devices[1].kind, kind("--disk"));
	vm_config_free(&p.c);

	char *eq[] = {"run", "--rng=ops_burst=3,ops=1", NULL};
	cr_assert_eq(parse(&p, &err, 2, eq), 0, "%s", err ? err->msg : "");
	r = p.c.devices[0].config;
	cr_assert_eq(r->rl.ops.size, 1);
	cr_assert_eq(r->rl.ops.one_time_burst, 3);
	cr_assert(tb_unlimited(&r->rl.bw));
	vm_config_free(&p.c);

	char *twice[] = {"run", "--rng", "--rng", "bw=1M", NULL};
	cr_assert_eq(parse(&p, &err, 4, twice), -1);
	cr_assert_str_eq(err->msg, "--rng bw=1M: the VM has its entropy device already");
	vs_err_free(&err);
	vm_config_free(&p.c);

	static const char *const bad[][2] = {
	    {"bw=fast", "--rng bw=fast: bw: not a rate"},
	    {"ops=0", "--rng ops=0: ops: must be above 0 (leave it out for no limit)"},
	    {"ops_burst=5", "--rng ops_burst=5: ops_burst: needs ops="},
	    {"bw=1K,iops=3",
	     "--rng bw=1K,iops=3: iops: unknown option (bw=, ops=, bw_burst=, ops_burst=)"},
	    {"bw=1K,ro", "--rng bw=1K,ro: `ro`: expected KEY=VALUE (bw=, ops=, bw_burst=, "
			 "ops_burst=)"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *argv2[] = {"run", "--rng", (char *)bad[i][0], NULL};
		cr_assert_eq(parse(&p, &err, 3, argv2), -1, "%s", bad[i][0]);
		cr_assert_str_eq(err->msg, bad[i][1]);
		vs_err_free(&err);
		vm_config_free(&p.c);
	}
}

Test(config_file, from_the_command_line_with_options_after_it)
{
	char path[] = "/tmp/vessel-config-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	const char *text =
	    "{" BOOT ", \"machine-config\": {\"vcpu_count\": 2, \"mem_size_mib\": 64},"
	    " \"entropy\": {}}";
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	struct vm_config c;
	vm_config_init(&c);
	vs_err_t err = NULL;
	bool help;
	char *argv[] = {"run", "--config-file", path, "--cpus", "3", "--rng", NULL};
	cr_assert_eq(vm_config_from_argv(&c, 6, argv, &help, &err), 0, "%s", err ? err->msg : "");
	unlink(path);
	cr_assert_str_eq(c.kernel, "/k");
	cr_assert_eq(c.cpus, 3, "the option after the file wins");
	cr_assert_eq(c.memory, 64ULL << 20);
	cr_assert_eq(c.ndevices, 1, "--rng after the file's entropy is the same device");
	vm_config_free(&c);

	vm_config_init(&c);
	char *missing[] = {"run", "--config-file", "/nonexistent/vm.json", NULL};
	cr_assert_eq(vm_config_from_argv(&c, 3, missing, &help, &err), VM_EXIT_ERROR);
	cr_assert(strstr(err->msg, "/nonexistent/vm.json"), "%s", err->msg);
	vs_err_free(&err);
	vm_config_free(&c);
}

Test(config_file, a_control_character_is_refused_before_it_reaches_a_message)
{
	expect_json_error("{" BOOT ", \"drives\": [{\"drive_id\": \"a\\nb\"}]}",
			  "drives[0].drive_id: a control character in a string");
	expect_json_error("{\"boot-source\": {\"kernel_image_path\": \"/k\", \"x\\u0001\": 1}}",
			  "boot-source: a control character in a key");
}

/* PATCH bodies of a started VM's devices (Firecracker's PartialDrive and
 * PartialNetworkInterface): a bucket given replaces the device's, one left out stays. */
static json_t *obj(const char *text)
{
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	cr_assert(j, "%s", text);
	return j;
}

Test(config_patch, partial_drive)
{
	vs_err_t err = NULL;
	struct blk_patch p;
	json_t *j = obj("{\"drive_id\": \"d\", \"path_on_host\": \"/n.img\", \"rate_limiter\": "
			"{\"ops\": {\"size\": 10, \"refill_time\": 1000, \"one_time_burst\": 3}}}");
	cr_assert_eq(blk_patch_from_json(j, &p, &err), 0, "%s", err ? err->msg : "");
	cr_assert_str_eq(p.path, "/n.img");
	cr_assert(p.has_rl && p.rl.ops_set && !p.rl.bw_set);
	struct rate_limiter rl;
	rl_init(&rl);
	tb_init(&rl.bw, 4096, 0, 100);
	rl_patch_apply(&rl, &p.rl);
	cr_assert_eq(rl.bw.size, 4096, "the bucket left out stays");
	cr_assert_eq(rl.ops.size, 10);
	cr_assert_eq(rl.ops.one_time_burst, 3);
	json_decref(j);
	j = obj("{\"drive_id\": \"d\", \"rate_limiter\": {\"bandwidth\": {\"size\": 0, "
		"\"refill_time\": 0}}}");
	cr_assert_eq(blk_patch_from_json(j, &p, &err), 0, "%s", err ? err->msg : "");
	cr_assert_null(p.path);
	rl_patch_apply(&rl, &p.rl);
	cr_assert(tb_unlimited(&rl.bw), "size 0: no limit");
	json_decref(j);

	const char *bad[][2] = {
	    {"{\"drive_id\": \"d\"}", "nothing to change"},
	    {"{\"path_on_host\": \"/x\"}", "drive_id"},
	    {"{\"drive_id\": \"d\", \"path_on_host\": \"\"}", "path_on_host"},
	    {"{\"drive_id\": \"d\", \"path_on_host\": 3}", "path_on_host"},
	    {"{\"drive_id\": \"d\", \"is_read_only\": true}", "is_read_only"},
	    {"{\"drive_id\": \"d\", \"rate_limiter\": {\"bandwidth\": {\"size\": 5}}}",
	     "rate_limiter.bandwidth.refill_time"},
	    {"{\"drive_id\": \"d\", \"rate_limiter\": 1}", "rate_limiter"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = obj(bad[i][0]);
		cr_assert_eq(blk_patch_from_json(j, &p, &err), -1, "%s", bad[i][0]);
		cr_assert(strstr(err->msg, bad[i][1]), "%s: %s", bad[i][0], err->msg);
		vs_err_free(&err);
		json_decref(j);
	}
}

Test(config_patch, partial_network_interface)
{
	vs_err_t err = NULL;
	struct net_patch p;
	json_t *j = obj("{\"iface_id\": \"eth0\", \"tx_rate_limiter\": {\"bandwidth\": "
			"{\"size\": 100, \"refill_time\": 10}}}");
	cr_assert_eq(net_patch_from_json(j, &p, &err), 0, "%s", err ? err->msg : "");
	cr_assert(p.has_tx && !p.has_rx && p.tx.bw_set && !p.tx.ops_set);
	cr_assert_eq(p.tx.rl.bw.size, 100);
	json_decref(j);
	const char *bad[][2] = {
	    {"{\"iface_id\": \"eth0\"}", "nothing to change"},
	    {"{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap1\"}", "host_dev_name"},
	    {"{\"iface_id\": \"eth0\", \"rx_rate_limiter\": {\"ops\": {\"refill_time\": 1}}}",
	     "rx_rate_limiter.ops.size"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = obj(bad[i][0]);
		cr_assert_eq(net_patch_from_json(j, &p, &err), -1, "%s", bad[i][0]);
		cr_assert(strstr(err->msg, bad[i][1]), "%s: %s", bad[i][0], err->msg);
		vs_err_free(&err);
		json_decref(j);
	}
}

Test(config_file, rx_rate_limiter_alone_leaves_transmit_free)
{
	struct vm_config c;
	vs_err_t err = NULL;
	cr_assert_eq(from_json(&c,
			       "{\"boot-source\": {\"kernel_image_path\": \"/k\"}, "
			       "\"network-interfaces\": [{\"iface_id\": \"e\", \"host_dev_name\": "
			       "\"tap0\", \"rx_rate_limiter\": {\"bandwidth\": {\"size\": 9, "
			       "\"refill_time\": 9}}}]}",
			       &err),
		     0, "%s", err ? err->msg : "");
	const struct net_spec *n = c.devices[0].config;
	cr_assert_eq(n->rl.bw.size, 9);
	cr_assert(n->has_tx_rl && rl_unlimited(&n->tx_rl), "Firecracker's rx limiter is rx's only");
	vm_config_free(&c);
}
