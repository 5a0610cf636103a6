#include "vmm/vmm.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "vmm/builder.h"
#include "vmm/config.h"
#include "vmm/controller.h"
#include "vmm/device.h"
#include "vmm/exit_status.h"
#include "vmm/snapshot/snapshot.h"
#include "vmm/seccomp.h"

static const char vm_help[] =
    "usage: vessel vm COMMAND\n"
    "\n"
    "commands:\n"
    "  run        boot a microVM (vessel vm run --help)\n"
    "             (run and api also take --no-seccomp and --seccomp-filter FILE:\n"
    "             docs/jail.md)\n"
    "  api        serve Firecracker's API on a Unix socket: vessel vm api --api-sock PATH\n"
    "             [--config-file vm.json] [--id ID] (docs/api.md)\n"
    "  snapshot-merge  write a Diff snapshot's memory file over its base: vessel vm\n"
    "             snapshot-merge BASE DIFF (docs/snapshots.md)\n"
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
	const struct device_kind *seen[16] = {0}; /* switches count once */
	const char *dir = NULL;
	for (int i = 1; i < argc; i++) {
		const struct device_kind *k = device_kind_by_flag(argv[i]);
		if (strcmp(argv[i], "--cpus") == 0 && i + 1 < argc) {
			if (vm_parse_cpus(argv[++i], &cpus, err) < 0)
				return usage_error(err);
		} else if (k && k->virtio && k->cli_value && i + 1 < argc) {
			i++; /* the layout depends on how many devices, not on their specs */
			nvirtio++;
		} else if (k && k->virtio && !k->cli_value) {
			size_t j = 0;
			while (j < 16 && seen[j] && seen[j] != k)
				j++;
			if (j < 16 && !seen[j]) {
				seen[j] = k;
				nvirtio++;
			}
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

/* Destroying a VM costs KVM 15-40 ms here (the PIT's kthread, irqchip, SRCU grace
 * periods), all after the guest's fate is known. A child that holds the last
 * references to the VM and vCPU fds pays it while we exit with the status. Our
 * stdio goes to /dev/null first, so the child never holds the caller's pipes open.
 * Sanitizer builds skip this: their leak report needs stderr, and speed is moot. */
static void release_detached(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return;
#endif
	fflush(NULL);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0)
		return;
	for (int fd = 0; fd <= 2; fd++)
		dup2(null, fd);
	close(null);
	if (fork() == 0)
		_exit(0); /* the child's exit closes the KVM fds */
}

/* `vm run`: arguments -> config -> builder -> controller. Returns the VM's exit status,
 * or -1 with err (vessel error, status 1). */
static int cmd_run(int argc, char **argv, vs_err_t *err)
{
	if (vmm_seccomp_setup(&argc, argv, err) < 0)
		return usage_error(err);
	struct vm_config c;
	vm_config_init(&c);
	bool help;
	int status = vm_config_from_argv(&c, argc, argv, &help, err);
	if (status == VM_EXIT_USAGE) {
		vm_config_free(&c);
		return usage_error(err);
	}
	if (status) {
		vm_config_free(&c);
		return -1;
	}
	if (help) {
		vm_config_free(&c);
		fputs(vm_run_help, stdout);
		return 0;
	}
	if (controller_claim_signals(err) < 0) {
		vm_config_free(&c);
		return -1;
	}
	struct vm *vm = vm_build(&c, err);
	vm_config_free(&c);
	if (!vm)
		return -1;
	status = controller_run(vm, err);
	if (status >= 0)
		release_detached();
	vm_free(vm);
	return status;
}

static const char api_usage[] =
    "usage: vessel vm api --api-sock PATH [--config-file vm.json] [--id ID]";

/* `vm api`: Firecracker's API on a Unix socket; the controller runs it. */
static int cmd_api(int argc, char **argv, vs_err_t *err)
{
	struct controller_api o = {0};
	if (vmm_seccomp_setup(&argc, argv, err) < 0)
		return usage_error(err);
	for (int i = 1; i < argc; i++) {
		const char **dst = NULL;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf("%s\n", api_usage);
			return 0;
		}
		if (strcmp(argv[i], "--api-sock") == 0)
			dst = &o.sock;
		else if (strcmp(argv[i], "--config-file") == 0)
			dst = &o.config_file;
		else if (strcmp(argv[i], "--id") == 0)
			dst = &o.id;
		if (!dst || i + 1 >= argc) {
			vs_err(err, 0, "%s: `%s`%s", api_usage, argv[i],
			       dst ? " needs a value" : " is not an option of vm api");
			return usage_error(err);
		}
		*dst = argv[++i];
	}
	if (!o.sock) {
		vs_err(err, 0, "%s: --api-sock is required", api_usage);
		return usage_error(err);
	}
	if (o.id && (!*o.id || strlen(o.id) > 64 ||
		     strspn(o.id, "abcdefghijklmnopqrstuvwxyz"
				  "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "0123456789-_") != strlen(o.id))) {
		vs_err(err, 0, "--id `%s`: 1 to 64 letters, digits, `-` or `_`", o.id);
		return usage_error(err);
	}
	return controller_serve(&o, err);
}

/* `vm snapshot-merge BASE DIFF`: a Diff snapshot's memory file written over its base, which
 * then is the later snapshot's full memory file (load it with the Diff's state file). */
static int cmd_snapshot_merge(int argc, char **argv, vs_err_t *err)
{
	if (argc != 3) {
		vs_err(err, 0, "usage: vessel vm snapshot-merge BASE_MEM_FILE DIFF_MEM_FILE");
		return usage_error(err);
	}
	if (snapshot_merge_memory(argv[1], argv[2], err) < 0)
		return VM_EXIT_ERROR;
	return 0;
}

/* The `vm` commands. */
static const struct {
	const char *name;
	int (*fn)(int argc, char **argv, vs_err_t *err);
} commands[] = {
    {"run", cmd_run},
    {"api", cmd_api},
    {"dump-acpi", cmd_dump_acpi},
    {"snapshot-merge", cmd_snapshot_merge},
};

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
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(cmd, commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1, err);
	vs_err(err, 0, "vm: unknown command `%s` (see vessel vm --help)", cmd);
	return usage_error(err);
}
