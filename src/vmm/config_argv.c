/* `vessel vm run`'s arguments -> a VM config. The device flags come from the table of
 * device kinds (device.h): a new kind with a cli_flag is a new option here. */
#include "vmm/config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "vmm/exit_status.h"

const char vm_run_help[] =
    "usage: vessel vm run [OPTIONS] [-- COMMAND...]\n"
    "\n"
    "Boots a microVM on KVM. The guest's serial console (COM1) is vessel's stdin\n"
    "and stdout; vessel's own messages go to stderr.\n"
    "\n"
    "options:\n"
    "  --kernel FILE    PVH ELF, Linux bzImage or ELF vmlinux (default: the guest\n"
    "                   image in $VESSEL_IMAGES or <vessel's dir>/../images/out)\n"
    "  --initrd FILE    initial ramdisk (default image: its initrd.img)\n"
    "  --cmdline STR    kernel command line (default image: console=ttyS0 panic=-1)\n"
    "  --cpus N         vCPUs, 1 up to KVM's limit (default 1)\n"
    "  --memory SIZE    guest RAM, e.g. 512M or 2G (default 128M)\n"
    "  --hugepages      back guest RAM with 2 MiB huge pages, reserved up front\n"
    "                   (needs free pages in /proc/sys/vm/nr_hugepages)\n"
    "  --merge          offer guest RAM to KSM (MADV_MERGEABLE): identical pages of\n"
    "                   this and other guests are shared while the host's KSM runs\n"
    "                   (/sys/kernel/mm/ksm/run = 1)\n"
    "  --shared-memory  guest RAM in a memfd, mapped shared: a local migration\n"
    "                   (vm migrate-send --local) hands it over instead of copying\n"
    "  --demo           run the tiny guest built into vessel (for hosts where Linux\n"
    "                   cannot boot, e.g. kvm_pvm)\n"
    "  --disk SPEC      a virtio-blk disk: PATH[,ro][,id=NAME][,direct][,bw=RATE]\n"
    "                   [,iops=N][,bw_burst=SIZE][,iops_burst=N] (repeatable)\n"
    "  --net SPEC       a virtio-net interface: tap=NAME[,mac=MAC][,bw=RATE][,ops=N]\n"
    "                   (repeatable; the tap is created if missing)\n"
    "  --rng [SPEC]     a virtio-rng device (entropy from the host's getrandom); SPEC\n"
    "                   limits it: bw=RATE[,ops=N][,bw_burst=SIZE][,ops_burst=N]\n"
    "  --vsock cid=N,uds=PATH\n"
    "                   a virtio-vsock device: the guest's CID; host programs connect\n"
    "                   to PATH and send `CONNECT <port>`, the guest's connections\n"
    "                   to the host's port P go to PATH_P (docs/vsock.md)\n"
    "  --balloon SPEC   a virtio-balloon device: amount=MiB[,deflate_on_oom]\n"
    "                   [,stats=SECONDS][,free_page_reporting] (the API's PATCH\n"
    "                   /balloon changes the amount of a running VM)\n"
    "  --fs tag=TAG,socket=PATH\n"
    "                   a virtio-fs share served by virtiofsd listening on PATH\n"
    "                   (/usr/lib/qemu/virtiofsd --socket-path=PATH -o source=DIR);\n"
    "                   the guest mounts it with `mount -t virtiofs TAG DIR`; guest\n"
    "                   RAM is then shared with virtiofsd (repeatable)\n"
    "  --config-file FILE\n"
    "                   a Firecracker config file (boot-source, machine-config,\n"
    "                   drives, network-interfaces, entropy, vsock, balloon, fs);\n"
    "                   options after it override or add to what it says\n"
    "  --no-virtio-cmdline\n"
    "                   do not append virtio_mmio.device=SIZE@ADDR:IRQ words to the\n"
    "                   kernel command line (the DSDT declares the devices anyway)\n"
    "  -- COMMAND...    appended to the command line after ` -- ` (init's argv)\n"
    "  -h, --help       this text\n"
    "\n"
    "console: when stdin is a terminal it is put in raw mode; Ctrl-A x quits.\n"
    "\n"
    "exit status:\n"
    "  0  the guest powered off (ACPI S5)\n"
    "  1  vessel error (bad input, KVM unavailable, ...)\n"
    "  2  usage error\n"
    "  3  the guest reset (i8042 0xFE or the FADT reset register)\n"
    "  4  triple fault (KVM_EXIT_SHUTDOWN)\n"
    "  5  KVM internal error or an unhandled exit (report on stderr)\n"
    "  128+N  stopped by signal N (Ctrl-A x counts as SIGINT: 130)\n"
    "\n"
    "environment: VESSEL_IMAGES (default guest image dir), VESSEL_KVM_DEVICE\n"
    "(default /dev/kvm). `vessel --debug vm run` logs unclaimed I/O and exits.\n";

enum {
	OPT_KERNEL = 256,
	OPT_INITRD,
	OPT_CMDLINE,
	OPT_CPUS,
	OPT_MEMORY,
	OPT_DEMO,
	OPT_HUGEPAGES,
	OPT_MERGE,
	OPT_SHARED_MEMORY,
	OPT_NO_VIRTIO_CMDLINE,
	OPT_CONFIG_FILE,
	OPT_DEVICE, /* + the kind's index in device_kinds */
};

static const struct option fixed_opts[] = {
    {"kernel", required_argument, NULL, OPT_KERNEL},
    {"initrd", required_argument, NULL, OPT_INITRD},
    {"cmdline", required_argument, NULL, OPT_CMDLINE},
    {"cpus", required_argument, NULL, OPT_CPUS},
    {"memory", required_argument, NULL, OPT_MEMORY},
    {"demo", no_argument, NULL, OPT_DEMO},
    {"hugepages", no_argument, NULL, OPT_HUGEPAGES},
    {"merge", no_argument, NULL, OPT_MERGE},
    {"shared-memory", no_argument, NULL, OPT_SHARED_MEMORY},
    {"no-virtio-cmdline", no_argument, NULL, OPT_NO_VIRTIO_CMDLINE},
    {"config-file", required_argument, NULL, OPT_CONFIG_FILE},
    {"help", no_argument, NULL, 'h'},
};
#define NFIXED (sizeof(fixed_opts) / sizeof(fixed_opts[0]))

static struct option *build_options(void)
{
	struct option *o = calloc(NFIXED + device_nkinds + 1, sizeof(*o));
	if (!o)
		return NULL;
	memcpy(o, fixed_opts, sizeof(fixed_opts));
	size_t n = NFIXED;
	for (size_t i = 0; i < device_nkinds; i++) {
		const struct device_kind *k = device_kinds[i];
		if (!k->cli_flag)
			continue;
		int has_arg = k->cli_value	    ? required_argument
			      : k->cli_spec_follows ? optional_argument
						    : no_argument;
		o[n++] = (struct option){k->cli_flag + 2, has_arg, NULL, OPT_DEVICE + (int)i};
	}
	return o;
}

/* A device flag: SPEC through the kind's parser; a switch without one counts once (spec
 * NULL). Returns the exit status for an error. */
static int add_device(struct vm_config *c, const struct device_kind *k, const char *spec,
		      vs_err_t *err)
{
	if (!k->cli_value && !spec) {
		if (vm_config_count(c, k))
			return 0;
		return vm_config_add_device(c, k, k->cli_flag, NULL, err) < 0 ? VM_EXIT_USAGE : 0;
	}
	if (!k->cli_value && vm_config_count(c, k)) {
		/* a second device of a switch's kind is not possible, and which spec wins would
		 * be a guess */
		vs_err(err, 0, "%s %s: the VM has its %s device already", k->cli_flag, spec,
		       k->name);
		return VM_EXIT_USAGE;
	}
	if (!*spec) {
		vs_err(err, 0, "%s: empty device spec", k->cli_flag);
		return VM_EXIT_USAGE;
	}
	cleanup_free char *origin = NULL;
	if (asprintf(&origin, "%s %s", k->cli_flag, spec) < 0) {
		vs_err(err, ENOMEM, "%s", k->cli_flag);
		return VM_EXIT_ERROR;
	}
	void *config;
	if (vm_config_add_device(c, k, origin, &config, err) < 0)
		return VM_EXIT_USAGE;
	if (k->from_cli && k->from_cli(spec, config, err) < 0) {
		vm_config_drop_last(c);
		vs_err_wrap(err, "%s", origin);
		return VM_EXIT_ERROR; /* a bad spec is bad input, as a file that won't open */
	}
	return 0;
}

static int set_string(char **dst, const char *s, vs_err_t *err)
{
	free(*dst);
	*dst = strdup(s);
	if (!*dst)
		return vs_err(err, ENOMEM, "arguments");
	return 0;
}

static int parse(struct vm_config *c, int argc, char **argv, const struct option *opts, bool *help,
		 vs_err_t *err)
{
	optind = 0;
	opterr = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		int r = 0;
		switch (ch) {
		case OPT_KERNEL:
			r = set_string(&c->kernel, optarg, err);
			break;
		case OPT_INITRD:
			r = set_string(&c->initrd, optarg, err);
			break;
		case OPT_CMDLINE:
			r = set_string(&c->cmdline, optarg, err);
			break;
		case OPT_CPUS:
			if (vm_parse_cpus(optarg, &c->cpus, err) < 0)
				return VM_EXIT_USAGE;
			break;
		case OPT_MEMORY:
			if (vm_parse_memory(optarg, &c->memory, err) < 0)
				return VM_EXIT_USAGE;
			break;
		case OPT_DEMO:
			c->demo = true;
			break;
		case OPT_HUGEPAGES:
			c->hugepages = true;
			break;
		case OPT_MERGE:
			c->merge = true;
			break;
		case OPT_SHARED_MEMORY:
			c->shared_memory = true;
			break;
		case OPT_NO_VIRTIO_CMDLINE:
			c->no_virtio_cmdline = true;
			break;
		case OPT_CONFIG_FILE:
			if (vm_config_from_json_file(c, optarg, err) < 0)
				return VM_EXIT_ERROR; /* a bad file is bad input, as a bad --disk */
			break;
		case 'h':
			*help = true;
			return 0;
		case ':':
			vs_err(err, 0, "`%s` needs a value (see vessel vm run --help)",
			       argv[optind - 1]);
			return VM_EXIT_USAGE;
		default:
			if (ch >= OPT_DEVICE && (size_t)(ch - OPT_DEVICE) < device_nkinds) {
				const struct device_kind *k = device_kinds[ch - OPT_DEVICE];
				const char *spec = optarg;
				if (k->cli_value && !spec)
					spec = "";
				/* getopt gives an optional argument only as --flag=SPEC */
				if (!k->cli_value && !spec && k->cli_spec_follows &&
				    optind < argc && k->cli_spec_follows(argv[optind]))
					spec = argv[optind++];
				int status = add_device(c, k, spec, err);
				if (status)
					return status;
				break;
			}
			vs_err(err, 0, "unknown option `%s` (see vessel vm run --help)",
			       argv[optind - 1]);
			return VM_EXIT_USAGE;
		}
		if (r < 0)
			return VM_EXIT_ERROR;
	}
	if (optind < argc) {
		if (strcmp(argv[optind - 1], "--") != 0) {
			vs_err(err, 0, "unexpected argument `%s` (a guest command goes after `--`)",
			       argv[optind]);
			return VM_EXIT_USAGE;
		}
		c->command = argv + optind;
		c->ncommand = argc - optind;
	}
	if (vm_config_check(c, err) < 0)
		return VM_EXIT_USAGE;
	return 0;
}

int vm_config_from_argv(struct vm_config *c, int argc, char **argv, bool *help, vs_err_t *err)
{
	*help = false;
	cleanup_free struct option *opts = build_options();
	if (!opts) {
		vs_err(err, ENOMEM, "arguments");
		return VM_EXIT_ERROR;
	}
	return parse(c, argc, argv, opts, help, err);
}
