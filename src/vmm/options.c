#include "vmm/options.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

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
    "  --demo           run the tiny guest built into vessel (for hosts where Linux\n"
    "                   cannot boot, e.g. kvm_pvm)\n"
    "  --disk SPEC      a virtio-blk disk: PATH[,ro][,id=NAME][,direct][,bw=RATE]\n"
    "                   [,iops=N][,bw_burst=SIZE][,iops_burst=N] (repeatable)\n"
    "  --net SPEC       a virtio-net interface: tap=NAME[,mac=MAC][,bw=RATE][,ops=N]\n"
    "                   (repeatable; the tap is created if missing)\n"
    "  --rng            a virtio-rng device (entropy from the host's getrandom)\n"
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

int vm_parse_cpus(const char *s, unsigned *out, vs_err_t *err)
{
	char *end;
	errno = 0;
	if (!s || *s < '0' || *s > '9')
		return vs_err(err, 0, "--cpus `%s`: must be a positive number", s ? s : "");
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end)
		return vs_err(err, 0, "--cpus `%s`: must be a positive number", s);
	if (v == 0)
		return vs_err(err, 0, "--cpus 0: a VM needs at least one vCPU");
	if (v > VM_CPUS_CEILING)
		return vs_err(err, 0, "--cpus %lu: too many (vessel's limit is %d)", v,
			      VM_CPUS_CEILING);
	*out = (unsigned)v;
	return 0;
}

int vm_parse_memory(const char *s, uint64_t *out, vs_err_t *err)
{
	if (vs_parse_size(s, out) < 0)
		return vs_err(err, 0, "--memory `%s`: not a size (use e.g. 512M, 2G or 131072K)",
			      s);
	return 0;
}

enum {
	OPT_KERNEL = 256,
	OPT_INITRD,
	OPT_CMDLINE,
	OPT_CPUS,
	OPT_MEMORY,
	OPT_DEMO,
	OPT_HUGEPAGES,
	OPT_DISK,
	OPT_NET,
	OPT_RNG,
	OPT_NO_VIRTIO_CMDLINE,
};

static int add_virtio(struct vm_options *o, const char **list, unsigned *n, const char *opt,
		      const char *spec, vs_err_t *err)
{
	if (!*spec)
		return vs_err(err, 0, "%s: empty device spec", opt);
	if (vm_options_nvirtio(o) >= VM_MAX_VIRTIO)
		return vs_err(err, 0, "%s %s: more than %d virtio devices", opt, spec,
			      VM_MAX_VIRTIO);
	list[(*n)++] = spec;
	return 0;
}

int vm_options_parse(int argc, char **argv, struct vm_options *o, vs_err_t *err)
{
	static const struct option opts[] = {
	    {"kernel", required_argument, NULL, OPT_KERNEL},
	    {"initrd", required_argument, NULL, OPT_INITRD},
	    {"cmdline", required_argument, NULL, OPT_CMDLINE},
	    {"cpus", required_argument, NULL, OPT_CPUS},
	    {"memory", required_argument, NULL, OPT_MEMORY},
	    {"demo", no_argument, NULL, OPT_DEMO},
	    {"hugepages", no_argument, NULL, OPT_HUGEPAGES},
	    {"disk", required_argument, NULL, OPT_DISK},
	    {"net", required_argument, NULL, OPT_NET},
	    {"rng", no_argument, NULL, OPT_RNG},
	    {"no-virtio-cmdline", no_argument, NULL, OPT_NO_VIRTIO_CMDLINE},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	*o = (struct vm_options){.cpus = 1, .memory = VM_DEFAULT_MEMORY};
	optind = 0;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_KERNEL:
			o->kernel = optarg;
			break;
		case OPT_INITRD:
			o->initrd = optarg;
			break;
		case OPT_CMDLINE:
			o->cmdline = optarg;
			break;
		case OPT_CPUS:
			if (vm_parse_cpus(optarg, &o->cpus, err) < 0)
				return -1;
			break;
		case OPT_MEMORY:
			if (vm_parse_memory(optarg, &o->memory, err) < 0)
				return -1;
			break;
		case OPT_DEMO:
			o->demo = true;
			break;
		case OPT_HUGEPAGES:
			o->hugepages = true;
			break;
		case OPT_DISK:
			if (add_virtio(o, o->disks, &o->ndisks, "--disk", optarg, err) < 0)
				return -1;
			break;
		case OPT_NET:
			if (add_virtio(o, o->nets, &o->nnets, "--net", optarg, err) < 0)
				return -1;
			break;
		case OPT_RNG:
			if (!o->rng && vm_options_nvirtio(o) >= VM_MAX_VIRTIO)
				return vs_err(err, 0, "--rng: more than %d virtio devices",
					      VM_MAX_VIRTIO);
			o->rng = true;
			break;
		case OPT_NO_VIRTIO_CMDLINE:
			o->no_virtio_cmdline = true;
			break;
		case 'h':
			o->help = true;
			return 0;
		case ':':
			return vs_err(err, 0, "`%s` needs a value (see vessel vm run --help)",
				      argv[optind - 1]);
		default:
			return vs_err(err, 0, "unknown option `%s` (see vessel vm run --help)",
				      argv[optind - 1]);
		}
	}
	if (optind < argc) {
		if (strcmp(argv[optind - 1], "--") != 0)
			return vs_err(err, 0,
				      "unexpected argument `%s` (a guest command goes after `--`)",
				      argv[optind]);
		o->command = argv + optind;
		o->ncommand = argc - optind;
	}
	if (o->demo && (o->kernel || o->initrd))
		return vs_err(err, 0, "--demo runs the built-in guest: drop --kernel/--initrd");
	return 0;
}

/* Linux splits the command line at spaces unless a word is in double quotes, which
 * it strips (next_arg()); there is no escape for a quote itself. */
char *vm_build_cmdline(const char *base, char **words, int n)
{
	size_t len = strlen(base) + 1;
	if (n > 0)
		len += 4;
	for (int i = 0; i < n; i++) {
		if (strchr(words[i], '"')) {
			errno = EINVAL;
			return NULL;
		}
		len += strlen(words[i]) + 3;
	}
	char *s = malloc(len);
	if (!s)
		return NULL;
	char *p = stpcpy(s, base);
	if (n > 0)
		p = stpcpy(p, *base ? " --" : "--");
	for (int i = 0; i < n; i++) {
		bool quote = !*words[i] || strpbrk(words[i], " \t\n");
		*p++ = ' ';
		if (quote)
			*p++ = '"';
		p = stpcpy(p, words[i]);
		if (quote)
			*p++ = '"';
	}
	*p = '\0';
	return s;
}
