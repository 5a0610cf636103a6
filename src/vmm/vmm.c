#include "vmm/vmm.h"

#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "vmm/exit_status.h"
#include "vmm/options.h"
#include "vmm/run.h"

static const char vm_help[] =
    "usage: vessel vm COMMAND\n"
    "\n"
    "commands:\n"
    "  run        boot a microVM (vessel vm run --help)\n"
    "  dump-acpi  write the ACPI tables a VM would get: vessel vm dump-acpi "
    "[--cpus N] [--rng] [--disk SPEC]... [--net SPEC]... DIR\n";

static int usage_error(vs_err_t *err)
{
	vs_report(*err);
	return VM_EXIT_USAGE;
}

static int cmd_dump_acpi(int argc, char **argv, vs_err_t *err)
{
	unsigned cpus = 1, nvirtio = 0;
	bool rng = false;
	const char *dir = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--cpus") == 0 && i + 1 < argc) {
			if (vm_parse_cpus(argv[++i], &cpus, err) < 0)
				return usage_error(err);
		} else if ((strcmp(argv[i], "--disk") == 0 || strcmp(argv[i], "--net") == 0) &&
			   i + 1 < argc) {
			i++; /* the layout depends on how many devices, not on their specs */
			nvirtio++;
		} else if (strcmp(argv[i], "--rng") == 0) {
			nvirtio += !rng;
			rng = true;
		} else if (!dir && argv[i][0] != '-') {
			dir = argv[i];
		} else {
			vs_err(err, 0,
			       "usage: vessel vm dump-acpi [--cpus N] [--rng] [--disk SPEC]... "
			       "[--net SPEC]... DIR");
			return usage_error(err);
		}
	}
	if (!dir) {
		vs_err(err, 0, "usage: vessel vm dump-acpi [--cpus N] DIR");
		return usage_error(err);
	}
	return vm_dump_acpi(cpus, nvirtio, dir, err) < 0 ? -1 : 0;
}

int vmm_main(const struct vs_globals *g, int argc, char **argv, vs_err_t *err)
{
	(void)g; /* --debug reaches us through the log level */
	if (argc < 2) {
		fputs(vm_help, stderr);
		return VM_EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		fputs(vm_help, stdout);
		return 0;
	}
	if (strcmp(cmd, "dump-acpi") == 0)
		return cmd_dump_acpi(argc - 1, argv + 1, err);
	if (strcmp(cmd, "run") != 0) {
		vs_err(err, 0, "vm: unknown command `%s` (see vessel vm --help)", cmd);
		return usage_error(err);
	}
	struct vm_options o;
	if (vm_options_parse(argc - 1, argv + 1, &o, err) < 0)
		return usage_error(err);
	if (o.help) {
		fputs(vm_run_help, stdout);
		return 0;
	}
	return vm_run(&o, err);
}
