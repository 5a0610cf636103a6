#include "vmm/run.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "vmm/boot/acpi.h"
#include "vmm/boot/cpu.h"
#include "vmm/boot/firmware.h"
#include "vmm/boot/image.h"
#include "vmm/boot/linux.h"
#include "vmm/boot/load.h"
#include "vmm/boot/pvh.h"
#include "vmm/console.h"
#include "vmm/demo.h"
#include "vmm/devices/i8042.h"
#include "vmm/devices/pm.h"
#include "vmm/devices/rtc.h"
#include "vmm/devices/serial.h"
#include "vmm/layout.h"
#include "vmm/vcpu.h"
#include "vmm/virtio/blk.h"
#include "vmm/virtio/net.h"
#include "vmm/virtio/rng.h"
#include "vmm/virtio/virtio.h"
#include "vmm/vm.h"

#define DEFAULT_IMAGE_CMDLINE "console=ttyS0 panic=-1"

/* A file mapped read-only (kernel), or a borrowed buffer (the demo guest). */
struct blob {
	const uint8_t *p;
	size_t len;
	bool mapped;
};

static void blob_free(struct blob *b)
{
	if (b->mapped && b->p)
		munmap((void *)b->p, b->len);
	*b = (struct blob){0};
}

static int blob_map(const char *what, const char *path, struct blob *b, vs_err_t *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vs_err(err, errno, "%s `%s`", what, path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return vs_err(err, errno, "%s `%s`", what, path);
	if (!S_ISREG(st.st_mode))
		return vs_err(err, 0, "%s `%s`: not a regular file", what, path);
	if (st.st_size == 0)
		return vs_err(err, 0, "%s `%s`: empty file", what, path);
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		return vs_err(err, errno, "%s `%s`: mmap", what, path);
	*b = (struct blob){p, (size_t)st.st_size, true};
	return 0;
}

/* images/out next to the build: $VESSEL_IMAGES, else <dir of vessel>/../images/out. */
static char *default_image_dir(void)
{
	const char *env = getenv("VESSEL_IMAGES");
	if (env && *env)
		return strdup(env);
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0)
		return NULL;
	exe[n] = '\0';
	char *dir = NULL;
	if (asprintf(&dir, "%s/../images/out", dirname(exe)) < 0)
		return NULL;
	return dir;
}

struct boot_files {
	struct blob kernel;
	const char *kernel_name;
	char *kernel_path, *initrd_path; /* owned when taken from the default image */
	const char *initrd;
	const char *cmdline;
};

static int pick_files(const struct vm_options *o, struct boot_files *f, vs_err_t *err)
{
	f->cmdline = o->cmdline ? o->cmdline : "";
	f->initrd = o->initrd;
	if (o->demo) {
		size_t n = vmm_demo_image(&f->kernel.p);
		if (n == 0)
			return vs_err(err, 0,
				      "--demo: this vessel was built without a demo guest "
				      "(tests/guests exports none)");
		f->kernel.len = n;
		f->kernel_name = "built-in demo guest";
		vs_info("running the built-in demo guest (a tiny PVH guest, not Linux)");
		return 0;
	}
	if (!o->kernel) {
		cleanup_free char *dir = default_image_dir();
		if (!dir)
			return vs_err(err, ENOMEM, "default guest image");
		if (asprintf(&f->kernel_path, "%s/vmlinuz", dir) < 0 ||
		    asprintf(&f->initrd_path, "%s/initrd.img", dir) < 0)
			return vs_err(err, ENOMEM, "default guest image");
		if (access(f->kernel_path, R_OK) < 0)
			return vs_err(err, 0,
				      "no --kernel given and the default guest image `%s` is "
				      "missing: build it with `make images` (images/build.sh), set "
				      "VESSEL_IMAGES, or try `vessel vm run --demo`",
				      f->kernel_path);
		if (!f->initrd && access(f->initrd_path, R_OK) == 0)
			f->initrd = f->initrd_path;
		if (!o->cmdline)
			f->cmdline = DEFAULT_IMAGE_CMDLINE;
	}
	f->kernel_name = o->kernel ? o->kernel : f->kernel_path;
	return blob_map(o->kernel ? "--kernel" : "default guest kernel", f->kernel_name, &f->kernel,
			err);
}

static uint64_t host_ram(void)
{
	struct sysinfo si;
	if (sysinfo(&si) < 0)
		return 0;
	return (uint64_t)si.totalram * si.mem_unit;
}

/* Reads the initrd straight into guest RAM at the highest place the kernel allows. */
static int load_initrd(struct vm *vm, const struct kimage *k, const char *path, uint64_t *addr,
		       uint64_t *size, vs_err_t *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vs_err(err, errno, "--initrd `%s`", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return vs_err(err, errno, "--initrd `%s`", path);
	if (!S_ISREG(st.st_mode) || st.st_size == 0)
		return vs_err(err, 0, "--initrd `%s`: not a non-empty regular file", path);
	uint64_t limit = linux_initrd_limit(k, &vm->mem);
	if (initrd_place((uint64_t)st.st_size, k->load_end, limit, addr, err) < 0)
		return vs_err_wrap(err, "--initrd `%s`", path);
	uint8_t *dst = guest_mem_ptr(&vm->mem, *addr, (uint64_t)st.st_size);
	if (!dst)
		return vs_err(err, 0, "--initrd `%s`: outside guest RAM", path);
	for (uint64_t done = 0; done < (uint64_t)st.st_size;) {
		ssize_t n = pread(fd, dst + done, (size_t)st.st_size - done, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return vs_err(err, n < 0 ? errno : EIO, "--initrd `%s`: read", path);
		done += (uint64_t)n;
	}
	*size = (uint64_t)st.st_size;
	return 0;
}

static int load_acpi(struct vm *vm, vs_err_t *err)
{
	struct acpi_virtio_mmio virtio[VIRTIO_MMIO_MAX_DEVICES];
	struct acpi_config cfg = {
	    .ncpus = vm->ncpus,
	    .virtio = virtio,
	    .nvirtio = virtio_mmio_acpi(vm, virtio, VIRTIO_MMIO_MAX_DEVICES),
	};
	struct acpi_tables t;
	if (acpi_build(&cfg, LAYOUT_ACPI, &t, err) < 0)
		return -1;
	uint8_t *dst = guest_mem_ptr(&vm->mem, LAYOUT_ACPI, t.len);
	if (dst)
		memcpy(dst, t.buf, t.len);
	acpi_tables_free(&t);
	if (!dst)
		return vs_err(err, 0, "no guest RAM for the ACPI tables");
	return 0;
}

struct devices {
	struct serial *serial;
	struct i8042 *i8042;
	struct rtc *rtc;
};

static void devices_free(struct devices *d)
{
	serial_free(d->serial);
	i8042_free(d->i8042);
	rtc_free(d->rtc);
}

static int devices_add(struct vm *vm, struct devices *d, vs_err_t *err)
{
	d->serial = serial_new(STDOUT_FILENO, (struct irq_line){vm_irq_line, vm, COM1_IRQ});
	d->i8042 = i8042_new(vm->ctl);
	d->rtc = rtc_new((struct irq_line){vm_irq_line, vm, RTC_IRQ}, NULL);
	if (!d->serial || !d->i8042 || !d->rtc)
		return vs_err(err, ENOMEM, "devices");
	if (bus_add(&vm->pio, COM1_PORT, 8, "COM1", serial_io, d->serial, err) < 0 ||
	    bus_add(&vm->pio, 0x60, 1, "i8042 data", i8042_data_io, d->i8042, err) < 0 ||
	    bus_add(&vm->pio, 0x64, 1, "i8042 command", i8042_cmd_io, d->i8042, err) < 0 ||
	    bus_add(&vm->pio, RTC_PORT, 2, "CMOS RTC", rtc_io, d->rtc, err) < 0 ||
	    bus_add(&vm->pio, PM_SLEEP_CONTROL_PORT, 2, "ACPI sleep", pm_sleep_io, &vm->ctl, err) <
		0 ||
	    bus_add(&vm->pio, PM_RESET_PORT, 1, "ACPI reset", pm_reset_io, &vm->ctl, err) < 0)
		return -1;
	return rtc_start(d->rtc, err);
}

/* Disks first, so a Linux guest's first disk is vda at the first window; then
 * interfaces, then entropy. */
static int virtio_devices_add(struct vm *vm, const struct vm_options *o, vs_err_t *err)
{
	for (unsigned i = 0; i < o->ndisks; i++)
		if (virtio_blk_add(vm, o->disks[i], err) < 0)
			return -1;
	for (unsigned i = 0; i < o->nnets; i++)
		if (virtio_net_add(vm, o->nets[i], err) < 0)
			return -1;
	if (o->rng && virtio_rng_add(vm, err) < 0)
		return -1;
	return 0;
}

/* The user's command line, the virtio_mmio.device= words (unless turned off), then
 * init's words after ` -- `. */
static char *full_cmdline(struct vm *vm, const struct vm_options *o, const char *base)
{
	cleanup_free char *words = o->no_virtio_cmdline ? strdup("") : virtio_mmio_cmdline(vm);
	cleanup_free char *with = NULL;
	if (!words)
		return NULL;
	const char *w = *base ? words : words + (*words == ' ');
	if (asprintf(&with, "%s%s", base, w) < 0)
		return NULL;
	return vm_build_cmdline(with, o->command, o->ncommand);
}

static int boot_setup(struct vm *vm, const struct kimage *k, const struct boot_files *f,
		      const char *cmdline, vs_err_t *err)
{
	if (kimage_load(k, f->kernel.p, f->kernel.len, &vm->mem, err) < 0)
		return -1;
	if (cmdline_load(k, cmdline, &vm->mem, err) < 0)
		return -1;
	uint64_t initrd = 0, initrd_size = 0;
	if (f->initrd && load_initrd(vm, k, f->initrd, &initrd, &initrd_size, err) < 0)
		return -1;
	if (load_acpi(vm, err) < 0 || firmware_write_reset_vector(&vm->mem, err) < 0)
		return -1;
	int bsp = vm->vcpus[0].fd;
	if (k->kind == KIMAGE_PVH) {
		if (pvh_write_start_info(&vm->mem, LAYOUT_ACPI, initrd, initrd_size, err) < 0)
			return -1;
		return cpu_enter_pvh(bsp, &vm->mem, k->entry, LAYOUT_PVH_INFO, err);
	}
	if (linux_write_boot_params(&vm->mem, k, f->kernel.p, initrd, initrd_size, LAYOUT_ACPI,
				    err) < 0)
		return -1;
	return cpu_enter_long64(bsp, &vm->mem, k->entry, LAYOUT_BOOT_PARAMS, err);
}

static int run_machine(struct vm *vm, struct devices *d, vs_err_t *err)
{
	if (vcpu_signals_init(err) < 0 || console_block_signals(err) < 0)
		return -1;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		if (vcpu_start(&vm->vcpus[i], err) < 0) {
			vm_stop(vm, VM_EXIT_ERROR, "vCPU thread");
			break;
		}
	}
	int status = *err ? -1 : console_loop(vm, d->serial, err);
	if (status < 0)
		vm_stop(vm, VM_EXIT_ERROR, "main loop error");
	/* A vCPU that stopped the VM while we were still starting others could not
	 * signal those not yet marked started; every thread is marked now. */
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_join(&vm->vcpus[i]);
	vm_log_unclaimed(vm);
	return status;
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

int vm_run(const struct vm_options *o, vs_err_t *err)
{
	if (guest_mem_check_size(o->memory, host_ram(), err) < 0)
		return -1;
	if (o->hugepages && o->memory % GUEST_HUGEPAGE)
		return vs_err(err, 0, "--hugepages: --memory must be a multiple of 2 MiB");

	cleanup_close int kvm_fd = -1;
	struct boot_files f = {0};
	struct kimage k;
	struct vm vm;
	struct devices d = {0};
	cleanup_free char *cmdline = NULL;
	bool vm_made = false;
	int status = -1;

	if (pick_files(o, &f, err) < 0)
		goto out;
	if (kimage_parse(f.kernel.p, f.kernel.len, &k, err) < 0) {
		vs_err_wrap(err, "%s `%s`", o->kernel ? "--kernel" : "kernel", f.kernel_name);
		goto out;
	}
	vs_debug("kernel `%s`: %s, entry 0x%llx, loads 0x%llx-0x%llx", f.kernel_name,
		 kimage_kind_name(k.kind), (unsigned long long)k.entry,
		 (unsigned long long)k.load_start, (unsigned long long)k.load_end);
	cmdline = vm_build_cmdline(f.cmdline, o->command, o->ncommand);
	if (!cmdline) {
		if (errno == EINVAL)
			vs_err(err, 0, "-- COMMAND: a word with a double quote cannot be passed on a "
				       "kernel command line");
		else
			vs_err(err, ENOMEM, "command line");
		goto out;
	}
	if (strlen(cmdline) > kimage_cmdline_max(&k)) {
		vs_err(err, 0, "kernel command line is %zu bytes; this kernel takes at most %zu",
		       strlen(cmdline), kimage_cmdline_max(&k));
		goto out;
	}
	/* the input is sound: now the host side */
	if (vm_open_kvm(&kvm_fd, err) < 0)
		goto out;
	unsigned max = vm_max_vcpus(kvm_fd);
	if (o->cpus > max) {
		vs_err(err, 0, "--cpus %u: more than KVM's limit of %u vCPUs on this host", o->cpus,
		       max);
		goto out;
	}
	vm_made = true; /* vm_create zeroes vm first: vm_destroy copes with a partial one */
	if (vm_create(&vm, kvm_fd, o->cpus, o->memory, o->hugepages ? GUEST_MEM_HUGEPAGES : 0,
		      err) < 0)
		goto out;
	for (unsigned i = 0; i < o->cpus; i++)
		if (vcpu_create(&vm, i, err) < 0)
			goto out;
	/* the devices exist before boot: the command line and the DSDT name them */
	if (virtio_devices_add(&vm, o, err) < 0)
		goto out;
	free(cmdline);
	cmdline = full_cmdline(&vm, o, f.cmdline);
	if (!cmdline) {
		if (errno == EINVAL)
			vs_err(err, 0, "-- COMMAND: a word with a double quote cannot be passed on a "
				       "kernel command line");
		else
			vs_err(err, ENOMEM, "command line");
		goto out;
	}
	if (strlen(cmdline) > kimage_cmdline_max(&k)) {
		vs_err(err, 0,
		       "kernel command line with the virtio devices is %zu bytes; this kernel "
		       "takes at most %zu (try --no-virtio-cmdline)",
		       strlen(cmdline), kimage_cmdline_max(&k));
		goto out;
	}
	if (boot_setup(&vm, &k, &f, cmdline, err) < 0 || devices_add(&vm, &d, err) < 0)
		goto out;
	/* the guest has its copy: the file's pages need not count in our RSS */
	blob_free(&f.kernel);
	status = run_machine(&vm, &d, err);
	if (status >= 0)
		release_detached();
out:
	if (vm_made) {
		virtio_mmio_free_all(&vm); /* its workers touch guest RAM: before the VM goes */
		vm_destroy(&vm);
	}
	devices_free(&d);
	blob_free(&f.kernel);
	free(f.kernel_path);
	free(f.initrd_path);
	return status;
}

int vm_dump_acpi(unsigned ncpus, unsigned nvirtio, const char *dir, vs_err_t *err)
{
	struct acpi_virtio_mmio virtio[VIRTIO_MMIO_MAX_DEVICES];
	if (nvirtio > VIRTIO_MMIO_MAX_DEVICES)
		return vs_err(err, 0, "more than %d virtio devices", VIRTIO_MMIO_MAX_DEVICES);
	for (unsigned i = 0; i < nvirtio; i++)
		virtio_mmio_slot(i, &virtio[i]);
	struct acpi_config cfg = {.ncpus = ncpus, .virtio = virtio, .nvirtio = nvirtio};
	struct acpi_tables t;
	if (acpi_build(&cfg, LAYOUT_ACPI, &t, err) < 0)
		return -1;
	int r = acpi_dump(&t, dir, err);
	acpi_tables_free(&t);
	return r;
}
