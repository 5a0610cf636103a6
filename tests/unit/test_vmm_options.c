/* `vessel vm run` argument validation. */
#include <criterion/criterion.h>
#include <string.h>

#include "vmm/options.h"

static int parse(struct vm_options *o, vs_err_t *err, int argc, char **argv)
{
	return vm_options_parse(argc, argv, o, err);
}

#define ARGV(...) ((char *[]){"run", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){"run", __VA_ARGS__}) / sizeof(char *)))

Test(options, defaults)
{
	struct vm_options o;
	vs_err_t err = NULL;
	char *argv[] = {"run", "--hugepages", NULL};
	cr_assert_eq(parse(&o, &err, 1, argv), 0);
	cr_assert_eq(o.cpus, 1);
	cr_assert_eq(o.memory, 128ULL << 20);
	cr_assert_null(o.kernel);
	cr_assert_eq(o.ncommand, 0);
	cr_assert_not(o.hugepages);
}

Test(options, all_and_command)
{
	struct vm_options o;
	vs_err_t err = NULL;
	char *argv[] = {"run",	     "--hugepages", "--kernel", "k", "--initrd", "i",
			"--cmdline", "c",	    "--cpus",	"4", "--memory", "1G",
			"--",	     "sh",	    "-c",	"x", NULL};
	cr_assert_eq(parse(&o, &err, (int)(sizeof(argv) / sizeof(argv[0])) - 1, argv), 0, "%s",
		     err ? err->msg : "");
	cr_assert_str_eq(o.kernel, "k");
	cr_assert_str_eq(o.initrd, "i");
	cr_assert_str_eq(o.cmdline, "c");
	cr_assert_eq(o.cpus, 4);
	cr_assert_eq(o.memory, 1ULL << 30);
	cr_assert_eq(o.ncommand, 3);
	cr_assert_str_eq(o.command[1], "-c");
	cr_assert(o.hugepages);
}

static void expect_usage(int argc, char **argv, const char *needle)
{
	struct vm_options o;
	vs_err_t err = NULL;
	cr_assert_eq(parse(&o, &err, argc, argv), -1);
	cr_assert(strstr(err->msg, needle), "`%s` lacks `%s`", err->msg, needle);
	vs_err_free(&err);
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
	struct vm_options o;
	vs_err_t err = NULL;
	cr_assert_eq(parse(&o, &err, ARGC("--help"), ARGV("--help")), 0);
	cr_assert(o.help);
	cr_assert(strstr(vm_run_help, "exit status"));
	cr_assert(strstr(vm_run_help, "--memory SIZE"));
}
