/* The VM config: `vessel vm run`'s arguments, the device flags from the table of kinds. */
#include <criterion/criterion.h>
#include <string.h>

#include "vmm/config.h"
#include "vmm/exit_status.h"
#include "vmm/virtio/blk_spec.h"
#include "vmm/virtio/net_spec.h"

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
	cr_assert_null(p.c.devices[1].config);
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
