/* The builder: a VM config -> a VM ready to run. It checks what can be checked before
 * KVM is opened (the kernel, the command line, the memory size), then makes the KVM VM,
 * its vCPUs and its devices (through the table of device kinds), and loads the guest. */
#include "vmm/builder.h"
#include "vmm/vmm.h"

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
#include "vmm/demo.h"
#include "vmm/device.h"
#include "vmm/devices/vmgenid.h"
#include "vmm/inventory/inventory.h"
#include "vmm/layout.h"
#include "vmm/vcpu.h"
#include "vmm/virtio/balloon.h"
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
char *vmm_default_image_dir(void)
{
	const char *env = getenv("VESSEL_IMAGES");
	if (env && *env)
		return strdup(env);
	cleanup_free char *self = vs_exe_dir();
	char *dir = NULL;
	if (!self || asprintf(&dir, "%s/../images/out", self) < 0)
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

static int pick_files(const struct vm_config *o, struct boot_files *f, vs_err_t *err)
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
		cleanup_free char *dir = vmm_default_image_dir();
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
	const struct vmgenid *g = device_find(vm, &vmgenid_kind);
	struct acpi_vmgenid genid = {g ? vmgenid_addr(g) : 0, GED_GSI};
	struct acpi_config cfg = {
	    .ncpus = vm->ncpus,
	    .virtio = virtio,
	    .nvirtio = virtio_mmio_acpi(vm, virtio, VIRTIO_MMIO_MAX_DEVICES),
	    .vmgenid = g ? &genid : NULL,
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

/* Every kind in the table's order: the configured devices of each kind (disks first, so a
 * Linux guest's first disk is vda at the first window), and one of each builtin kind. */
static int devices_add(struct vm *vm, const struct vm_config *c, vs_err_t *err)
{
	for (size_t k = 0; k < device_nkinds; k++) {
		const struct device_kind *kind = device_kinds[k];
		if (kind->builtin) {
			if (device_add(vm, kind, NULL, err) < 0)
				return vs_err_wrap(err, "%s", kind->name);
			continue;
		}
		for (unsigned i = 0; i < c->ndevices; i++) {
			const struct vm_config_device *d = &c->devices[i];
			if (d->kind == kind && device_add(vm, kind, d->config, err) < 0)
				return vs_err_wrap(err, "%s", d->origin);
		}
	}
	return 0;
}

/* The user's command line, the virtio_mmio.device= words (unless turned off), then
 * init's words after ` -- `. */
static char *full_cmdline(struct vm *vm, const struct vm_config *o, const char *base)
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

/* Takes cmdline; returns it, or NULL with err (NULL in: the reason is in errno). what
 * names the line in the message. */
static char *checked_cmdline(const struct kimage *k, char *cmdline, const char *what, vs_err_t *err)
{
	if (!cmdline) {
		if (errno == EINVAL)
			vs_err(err, 0,
			       "-- COMMAND: a word with a double quote cannot be passed on a "
			       "kernel command line");
		else
			vs_err(err, ENOMEM, "command line");
		return NULL;
	}
	if (strlen(cmdline) > kimage_cmdline_max(k)) {
		vs_err(err, 0,
		       "kernel command line%s is %zu bytes; this kernel takes at most %zu%s", what,
		       strlen(cmdline), kimage_cmdline_max(k),
		       *what ? " (try --no-virtio-cmdline)" : "");
		free(cmdline);
		return NULL;
	}
	return cmdline;
}

/* track_dirty_pages: KVM logs the guest's writes, the VMM's bitmap its devices' writes;
 * together they are what a Diff snapshot writes. */
static int track_dirty(struct vm *vm, const struct vm_config *o, vs_err_t *err)
{
	if (!o->track_dirty)
		return 0;
	if (vm_dirty_log(vm, true, err) < 0 || guest_mem_track_dirty(&vm->mem, true, err) < 0)
		return vs_err_wrap(err, "track_dirty_pages");
	return 0;
}

/* The first configured device whose back-end maps guest RAM (virtio-fs's virtiofsd), or
 * NULL: with one, RAM is a shared memfd whatever the config says. */
static const struct vm_config_device *ram_sharer(const struct vm_config *o)
{
	for (unsigned i = 0; i < o->ndevices; i++)
		if (o->devices[i].kind->shares_ram)
			return &o->devices[i];
	return NULL;
}

/* kvm_fd (this function's from here) makes the VM and its vCPUs. */
static struct vm *vm_make_kvm(const struct vm_config *o, int kvm_fd, const char *mem_file,
			      int mem_fd, vs_err_t *err)
{
	struct vm *vm = malloc(sizeof(*vm));
	if (!vm) {
		close(kvm_fd);
		vs_err(err, ENOMEM, "VM");
		return NULL;
	}
	/* vm_create sets vm up before anything can fail: vm_free copes with a partial one;
	 * kvm_fd is the VM's from here (vm_free closes it) */
	unsigned flags = (o->hugepages ? GUEST_MEM_HUGEPAGES : 0) |
			 (o->shared_memory || ram_sharer(o) ? GUEST_MEM_SHARED : 0);
	int created = mem_file	  ? vm_create_from_file(vm, kvm_fd, o->cpus, o->memory, mem_file, err)
		      : mem_fd >= 0 ? vm_create_from_fd(vm, kvm_fd, o->cpus, o->memory, mem_fd, err)
				    : vm_create(vm, kvm_fd, o->cpus, o->memory, flags, err);
	if (created < 0 || (o->merge && guest_mem_merge(&vm->mem, err) < 0))
		goto fail;
	for (unsigned i = 0; i < o->cpus; i++)
		if (vcpu_create(vm, i, err) < 0)
			goto fail;
	return vm;
fail:
	vm_free(vm);
	return NULL;
}

/* KVM, the VM (RAM from mem_file or mem_fd when given) and its vCPUs: the part of a build
 * that a cold boot, a snapshot's load and a migration's destination share. */
static struct vm *vm_make(const struct vm_config *o, const char *mem_file, int mem_fd,
			  vs_err_t *err)
{
	const struct vm_config_device *sharer = ram_sharer(o);
	if (sharer && o->merge) {
		vs_err(err, 0,
		       "--merge: KSM merges only private memory, and %s needs guest RAM shared "
		       "with its back-end",
		       sharer->origin);
		return NULL;
	}
	if (sharer && mem_file) {
		vs_err(err, 0, "%s: guest RAM from a memory file is private, its back-end can't "
			       "map it",
		       sharer->origin);
		return NULL;
	}
	int kvm_fd = -1;
	if (vm_open_kvm(&kvm_fd, err) < 0)
		return NULL;
	unsigned max = vm_max_vcpus(kvm_fd);
	if (o->cpus > max) {
		close(kvm_fd);
		vs_err(err, 0, "--cpus %u: more than KVM's limit of %u vCPUs on this host", o->cpus,
		       max);
		return NULL;
	}
	/* the host's policy once the VM could exist at all, before KVM makes any of it */
	if (inventory_admit(o->cpus, o->memory, err) < 0) {
		close(kvm_fd);
		return NULL;
	}
	for (unsigned i = 0; i < o->ndevices; i++)
		if (o->devices[i].kind == &virtio_balloon_kind)
			inventory_set_balloon(
			    (uint64_t)((const struct balloon_config *)o->devices[i].config)->amount_mib
			    << 20);
	struct vm *vm = vm_make_kvm(o, kvm_fd, mem_file, mem_fd, err);
	if (!vm)
		inventory_leave();
	return vm;
}

struct vm *vm_build_restore(const struct vm_config *o, const char *mem_file, int mem_fd,
			    vs_err_t *err)
{
	if (guest_mem_check_size(o->memory, host_ram(), err) < 0)
		return NULL;
	struct vm *vm = vm_make(o, mem_file, mem_fd, err);
	if (!vm)
		return NULL;
	vm->ram_given = true;
	if (devices_add(vm, o, err) < 0 || track_dirty(vm, o, err) < 0) {
		vm_free(vm);
		return NULL;
	}
	return vm;
}

void vm_free(struct vm *vm)
{
	if (!vm)
		return;
	int kvm_fd = vm->kvm_fd;
	vm_destroy(vm); /* the devices first: their workers touch guest RAM */
	if (kvm_fd >= 0)
		close(kvm_fd);
	free(vm);
	inventory_leave();
}

struct vm *vm_build(const struct vm_config *o, vs_err_t *err)
{
	if (guest_mem_check_size(o->memory, host_ram(), err) < 0)
		return NULL;
	if (o->hugepages && o->memory % GUEST_HUGEPAGE) {
		vs_err(err, 0, "--hugepages: --memory must be a multiple of 2 MiB");
		return NULL;
	}

	struct boot_files f = {0};
	struct kimage k;
	struct vm *vm = NULL;
	cleanup_free char *cmdline = NULL;
	bool ok = false;

	if (pick_files(o, &f, err) < 0)
		goto out;
	if (kimage_parse(f.kernel.p, f.kernel.len, &k, err) < 0) {
		vs_err_wrap(err, "%s `%s`", o->kernel ? "--kernel" : "kernel", f.kernel_name);
		goto out;
	}
	vs_debug("kernel `%s`: %s, entry 0x%llx, loads 0x%llx-0x%llx", f.kernel_name,
		 kimage_kind_name(k.kind), (unsigned long long)k.entry,
		 (unsigned long long)k.load_start, (unsigned long long)k.load_end);
	/* the user's part is checked before KVM is opened; the devices' words come later */
	cmdline =
	    checked_cmdline(&k, vm_build_cmdline(f.cmdline, o->command, o->ncommand), "", err);
	if (!cmdline)
		goto out;
	/* the input is sound: now the host side */
	vm = vm_make(o, NULL, -1, err);
	if (!vm)
		goto out;
	/* the devices exist before boot: the command line and the DSDT name them */
	if (devices_add(vm, o, err) < 0 || track_dirty(vm, o, err) < 0)
		goto out;
	free(cmdline);
	cmdline =
	    checked_cmdline(&k, full_cmdline(vm, o, f.cmdline), " with the virtio devices", err);
	if (!cmdline)
		goto out;
	if (boot_setup(vm, &k, &f, cmdline, err) < 0)
		goto out;
	ok = true;
out:
	/* the guest has its copy: the file's pages need not count in our RSS */
	blob_free(&f.kernel);
	free(f.kernel_path);
	free(f.initrd_path);
	if (!ok) {
		vm_free(vm);
		return NULL;
	}
	return vm;
}

int vm_dump_acpi(unsigned ncpus, unsigned nvirtio, const char *dir, vs_err_t *err)
{
	struct acpi_virtio_mmio virtio[VIRTIO_MMIO_MAX_DEVICES];
	if (nvirtio > VIRTIO_MMIO_MAX_DEVICES)
		return vs_err(err, 0, "more than %d virtio devices", VIRTIO_MMIO_MAX_DEVICES);
	for (unsigned i = 0; i < nvirtio; i++)
		virtio_mmio_slot(i, &virtio[i]);
	/* the DSDT a VM gets: every VM has the generation ID */
	struct acpi_vmgenid genid = {LAYOUT_VMGENID, GED_GSI};
	struct acpi_config cfg = {
	    .ncpus = ncpus, .virtio = virtio, .nvirtio = nvirtio, .vmgenid = &genid};
	struct acpi_tables t;
	if (acpi_build(&cfg, LAYOUT_ACPI, &t, err) < 0)
		return -1;
	int r = acpi_dump(&t, dir, err);
	acpi_tables_free(&t);
	return r;
}
