#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "vmm/boot/cpu.h"
#include "vmm/layout.h"
#include "vmm/vcpu.h"

int vm_open_kvm(int *kvm_fd, vs_err_t *err)
{
	const char *dev = getenv("VESSEL_KVM_DEVICE");
	if (!dev || !*dev)
		dev = "/dev/kvm";
	int fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT)
			return vs_err(
			    err, e,
			    "open `%s` (is KVM enabled in the firmware and the kvm module loaded?)",
			    dev);
		if (e == EACCES || e == EPERM)
			return vs_err(
			    err, e, "open `%s` (add your user to the `kvm` group, or run as root)",
			    dev);
		return vs_err(err, e, "open `%s`", dev);
	}
	int v = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION) {
		close(fd);
		return vs_err(err, 0, "`%s`: KVM API version %d, vessel needs %d", dev, v,
			      KVM_API_VERSION);
	}
	*kvm_fd = fd;
	return 0;
}

unsigned vm_max_vcpus(int kvm_fd)
{
	int n = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (n <= 0)
		n = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	return n > 0 ? (unsigned)n : 4;
}

static int vm_ioctl(struct vm *vm, unsigned long req, void *arg, const char *name, vs_err_t *err)
{
	if (ioctl(vm->vm_fd, req, arg) < 0)
		return vs_err(err, errno, "%s", name);
	return 0;
}

static int set_slot(struct vm *vm, uint32_t slot, uint64_t gpa, uint64_t size, void *host,
		    vs_err_t *err)
{
	struct kvm_userspace_memory_region r = {
	    .slot = slot,
	    .flags = vm->dirty_log ? KVM_MEM_LOG_DIRTY_PAGES : 0,
	    .guest_phys_addr = gpa,
	    .memory_size = size,
	    .userspace_addr = (uint64_t)(uintptr_t)host,
	};
	return vm_ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r, "KVM_SET_USER_MEMORY_REGION", err);
}

static int install_routes(struct vm *vm, vs_err_t *err);
static const struct vm_ops kvm_ops;

static void machine_stop_cb(void *ctx, int status, const char *why)
{
	vm_stop(ctx, status, why);
}

/* What every VM has, KVM or not; vm_destroy copes with a VM left here. */
static void vm_init(struct vm *vm, const struct vm_ops *ops, void *ops_ctx)
{
	memset(vm, 0, sizeof(*vm));
	vm->ops = ops;
	vm->ops_ctx = ops_ctx;
	vm->kvm_fd = vm->vm_fd = vm->stop_fd = -1;
	atomic_init(&vm->status, -1);
	pthread_mutex_init(&vm->unclaimed_lock, NULL);
	pthread_mutex_init(&vm->park_lock, NULL);
	pthread_cond_init(&vm->park_cond, NULL);
	vm->ctl = (struct machine_ctl){machine_stop_cb, vm};
}

int vm_create_detached(struct vm *vm, const struct vm_ops *ops, void *ops_ctx, uint64_t mem_size,
		       vs_err_t *err)
{
	vm_init(vm, ops, ops_ctx);
	if (guest_mem_map(&vm->mem, mem_size, 0, err) < 0)
		return -1;
	vm->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_fd < 0)
		return vs_err(err, errno, "eventfd");
	return 0;
}

static int set_slots(struct vm *vm, vs_err_t *err)
{
	if (set_slot(vm, 0, 0, vm->mem.low_size, vm->mem.host, err) < 0)
		return -1;
	if (vm->mem.ram_size > vm->mem.low_size &&
	    set_slot(vm, 1, LAYOUT_4G, vm->mem.ram_size - vm->mem.low_size,
		     vm->mem.host + vm->mem.low_size, err) < 0)
		return -1;
	return 0;
}

int vm_dirty_log(struct vm *vm, bool on, vs_err_t *err)
{
	if (vm->dirty_log == on)
		return 0;
	vm->dirty_log = on;
	if (set_slots(vm, err) < 0) {
		vm->dirty_log = !on;
		return vs_err_wrap(err, "%s KVM's dirty log", on ? "start" : "stop");
	}
	return 0;
}

static int take_slot_log(struct vm *vm, uint32_t slot, uint64_t first_page, uint64_t npages,
			 uint64_t *out, vs_err_t *err)
{
	uint64_t words = (npages + 63) / 64;
	uint64_t *bits = calloc(words ? words : 1, sizeof(uint64_t));
	if (!bits)
		return vs_err(err, ENOMEM, "dirty log of slot %u", slot);
	struct kvm_dirty_log log = {.slot = slot, .dirty_bitmap = bits};
	if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) {
		int e = errno;
		free(bits);
		return vs_err(err, e, "KVM_GET_DIRTY_LOG slot %u", slot);
	}
	for (uint64_t i = 0; i < npages; i++)
		if ((bits[i / 64] >> (i % 64)) & 1)
			out[(first_page + i) / 64] |= 1ull << ((first_page + i) % 64);
	free(bits);
	return 0;
}

int vm_take_dirty_log(struct vm *vm, uint64_t *out, vs_err_t *err)
{
	if (!vm->dirty_log)
		return vs_err(err, 0, "KVM's dirty log is not on (enable_diff_snapshots)");
	uint64_t low = vm->mem.low_size / 4096;
	if (take_slot_log(vm, 0, 0, low, out, err) < 0)
		return -1;
	if (vm->mem.ram_size > vm->mem.low_size &&
	    take_slot_log(vm, 1, low, guest_mem_npages(&vm->mem) - low, out, err) < 0)
		return -1;
	return 0;
}

int vm_clock_hold(struct vm *vm, vs_err_t *err)
{
	struct kvm_clock_data c;
	memset(&c, 0, sizeof(c));
	if (vm_ioctl(vm, KVM_GET_CLOCK, &c, "KVM_GET_CLOCK", err) < 0)
		return -1;
	c.flags = 0; /* how KVM read it, here; only the value is set back */
	vm->held_clock = c;
	vm->clock_held = true;
	return 0;
}

int vm_clock_release(struct vm *vm, vs_err_t *err)
{
	if (!vm->clock_held)
		return 0;
	struct kvm_clock_data c = vm->held_clock;
	if (vm_ioctl(vm, KVM_SET_CLOCK, &c, "KVM_SET_CLOCK", err) < 0)
		return -1;
	vm->clock_held = false;
	return 0;
}

/* Guest RAM: anonymous or a memfd (mem_flags), a snapshot's file, or a handed-over memfd */
struct ram_source {
	unsigned flags;
	const char *file;
	int fd;
};

static int create(struct vm *vm, int kvm_fd, unsigned ncpus, uint64_t mem_size,
		  const struct ram_source *ram, vs_err_t *err);

int vm_create(struct vm *vm, int kvm_fd, unsigned ncpus, uint64_t mem_size, unsigned mem_flags,
	      vs_err_t *err)
{
	const struct ram_source ram = {.flags = mem_flags, .fd = -1};
	return create(vm, kvm_fd, ncpus, mem_size, &ram, err);
}

int vm_create_from_file(struct vm *vm, int kvm_fd, unsigned ncpus, uint64_t mem_size,
			const char *mem_file, vs_err_t *err)
{
	const struct ram_source ram = {.file = mem_file, .fd = -1};
	return create(vm, kvm_fd, ncpus, mem_size, &ram, err);
}

int vm_create_from_fd(struct vm *vm, int kvm_fd, unsigned ncpus, uint64_t mem_size, int mem_fd,
		      vs_err_t *err)
{
	const struct ram_source ram = {.fd = mem_fd};
	return create(vm, kvm_fd, ncpus, mem_size, &ram, err);
}

static int map_ram(struct guest_mem *m, uint64_t size, const struct ram_source *ram, vs_err_t *err)
{
	if (ram->file)
		return guest_mem_map_file(m, ram->file, size, err);
	if (ram->fd >= 0)
		return guest_mem_map_fd(m, ram->fd, size, err);
	return guest_mem_map(m, size, ram->flags, err);
}

static int create(struct vm *vm, int kvm_fd, unsigned ncpus, uint64_t mem_size,
		  const struct ram_source *ram, vs_err_t *err)
{
	vm_init(vm, &kvm_ops, NULL);
	vm->kvm_fd = kvm_fd;
	vm->ncpus = ncpus;

	int fd;
	do
		fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return vs_err(err, errno, "KVM_CREATE_VM");
	vm->vm_fd = fd;
	vm->run_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size < (int)sizeof(struct kvm_run))
		return vs_err(err, errno, "KVM_GET_VCPU_MMAP_SIZE");

	/* Memory slots first: once the irqchip exists each slot change waits for an
	 * SRCU grace period (median 7.8 ms here, against 0.08 ms before it). */
	if (map_ram(&vm->mem, mem_size, ram, err) < 0)
		return -1;
	if (set_slots(vm, err) < 0)
		return -1;

	/* VT-x needs three private pages below 4 GiB for real-mode emulation */
	uint64_t idmap = LAYOUT_IDENTITY_MAP;
	if (ioctl(fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_TSS) < 0)
		return vs_err(err, errno, "KVM_SET_TSS_ADDR");
	if (vm_ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, &idmap, "KVM_SET_IDENTITY_MAP_ADDR", err) < 0)
		return -1;
	if (ioctl(fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return vs_err(err, errno, "KVM_CREATE_IRQCHIP");
	if (install_routes(vm, err) < 0)
		return -1;
	if (ncpus > 255) {
		/* APIC ids past 255 exist only as 32-bit x2APIC ids (the MADT's type 9) */
		struct kvm_enable_cap cap = {
		    .cap = KVM_CAP_X2APIC_API,
		    .args[0] =
			KVM_X2APIC_API_USE_32BIT_IDS | KVM_X2APIC_API_DISABLE_BROADCAST_QUIRK,
		};
		if (vm_ioctl(vm, KVM_ENABLE_CAP, &cap, "KVM_ENABLE_CAP(X2APIC_API)", err) < 0)
			return -1;
	}
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	if (vm_ioctl(vm, KVM_CREATE_PIT2, &pit, "KVM_CREATE_PIT2", err) < 0)
		return -1;

	vm->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_fd < 0)
		return vs_err(err, errno, "eventfd");
	vm->cpuid = cpu_supported_cpuid(kvm_fd, err);
	if (!vm->cpuid)
		return -1;
	vm->vcpus = calloc(ncpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return vs_err(err, ENOMEM, "%u vCPUs", ncpus);
	for (unsigned i = 0; i < ncpus; i++)
		vm->vcpus[i].fd = -1;
	return 0;
}

void vm_destroy(struct vm *vm)
{
	devices_free(vm);
	if (vm->vcpus) {
		for (unsigned i = 0; i < vm->ncpus; i++)
			vcpu_destroy(&vm->vcpus[i], vm->run_size);
		free(vm->vcpus);
	}
	free(vm->cpuid);
	free(vm->msi_routes);
	vm->msi_routes = NULL;
	bus_free(&vm->pio);
	bus_free(&vm->mmio);
	if (vm->stop_fd >= 0)
		close(vm->stop_fd);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	guest_mem_unmap(&vm->mem);
	pthread_mutex_destroy(&vm->unclaimed_lock);
	pthread_mutex_destroy(&vm->park_lock);
	pthread_cond_destroy(&vm->park_cond);
	vm->vcpus = NULL;
	vm->cpuid = NULL;
	vm->stop_fd = vm->vm_fd = -1;
}

static void kvm_irq_line(struct vm *vm, unsigned gsi, int level)
{
	struct kvm_irq_level l = {.irq = gsi, .level = (uint32_t)level};
	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0)
		vs_debug("KVM_IRQ_LINE gsi %u: %s", gsi, strerror(errno));
}

static int kvm_irqfd(struct vm *vm, int fd, unsigned gsi, bool assign, vs_err_t *err)
{
	struct kvm_irqfd i = {
	    .fd = (uint32_t)fd, .gsi = gsi, .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN};
	return vm_ioctl(vm, KVM_IRQFD, &i, assign ? "KVM_IRQFD" : "KVM_IRQFD (deassign)", err);
}

static int kvm_doorbell(struct vm *vm, const struct vm_doorbell *d, bool assign, vs_err_t *err)
{
	struct kvm_ioeventfd e = {
	    .datamatch = d->data,
	    .addr = d->addr,
	    .len = d->len,
	    .fd = d->fd,
	    .flags = (d->mmio ? 0 : KVM_IOEVENTFD_FLAG_PIO) |
		     (d->datamatch ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0) |
		     (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};
	return vm_ioctl(vm, KVM_IOEVENTFD, &e,
			assign ? "KVM_IOEVENTFD" : "KVM_IOEVENTFD (deassign)", err);
}

static const struct vm_ops kvm_ops = {
    .irq_line = kvm_irq_line,
    .irqfd = kvm_irqfd,
    .doorbell = kvm_doorbell,
};

void vm_irq_line(void *opaque, unsigned gsi, int level)
{
	struct vm *vm = opaque;
	vm->ops->irq_line(vm, gsi, level);
}

int vm_irqfd(struct vm *vm, int fd, unsigned gsi, vs_err_t *err)
{
	return vm->ops->irqfd(vm, fd, gsi, true, err);
}

int vm_irqfd_remove(struct vm *vm, int fd, unsigned gsi, vs_err_t *err)
{
	return vm->ops->irqfd(vm, fd, gsi, false, err);
}

int vm_doorbell(struct vm *vm, const struct vm_doorbell *d, vs_err_t *err)
{
	return vm->ops->doorbell(vm, d, true, err);
}

int vm_doorbell_remove(struct vm *vm, const struct vm_doorbell *d, vs_err_t *err)
{
	return vm->ops->doorbell(vm, d, false, err);
}

/* The PC's wiring, as the MADT tells it: the PIT's IRQ0 arrives on IOAPIC pin 2
 * (KVM's default would put it on pin 0) and pin 2 of the master PIC is the cascade.
 * Then the MSI routes. */
static int install_routes(struct vm *vm, vs_err_t *err)
{
	size_t n = 16 + VM_IOAPIC_PINS + vm->nmsi_routes;
	cleanup_free struct kvm_irq_routing *t =
	    calloc(1, sizeof(*t) + n * sizeof(struct kvm_irq_routing_entry));
	if (!t)
		return vs_err(err, ENOMEM, "GSI routing");
	size_t k = 0;
	for (unsigned gsi = 0; gsi < 16; gsi++) {
		if (gsi == 2)
			continue;
		t->entries[k++] = (struct kvm_irq_routing_entry){
		    .gsi = gsi,
		    .type = KVM_IRQ_ROUTING_IRQCHIP,
		    .u.irqchip = {.irqchip =
				      gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
				  .pin = gsi % 8}};
	}
	for (unsigned gsi = 0; gsi < VM_IOAPIC_PINS; gsi++) {
		if (gsi == 2)
			continue;
		t->entries[k++] = (struct kvm_irq_routing_entry){
		    .gsi = gsi,
		    .type = KVM_IRQ_ROUTING_IRQCHIP,
		    .u.irqchip = {.irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi == 0 ? 2 : gsi}};
	}
	for (size_t i = 0; i < vm->nmsi_routes; i++)
		t->entries[k++] = vm->msi_routes[i];
	t->nr = (uint32_t)k;
	return vm_ioctl(vm, KVM_SET_GSI_ROUTING, t, "KVM_SET_GSI_ROUTING", err);
}

int vm_route_msi(struct vm *vm, unsigned gsi, uint64_t addr, uint32_t data, vs_err_t *err)
{
	if (gsi < VM_IOAPIC_PINS)
		return vs_err(err, 0, "GSI %u belongs to the IOAPIC; MSI routes start at %d", gsi,
			      VM_IOAPIC_PINS);
	for (size_t i = 0; i < vm->nmsi_routes; i++)
		if (vm->msi_routes[i].gsi == gsi)
			return vs_err(err, 0, "GSI %u is already routed", gsi);
	struct kvm_irq_routing_entry *r =
	    realloc(vm->msi_routes, (vm->nmsi_routes + 1) * sizeof(*r));
	if (!r)
		return vs_err(err, ENOMEM, "GSI routing");
	vm->msi_routes = r;
	r[vm->nmsi_routes++] = (struct kvm_irq_routing_entry){
	    .gsi = gsi,
	    .type = KVM_IRQ_ROUTING_MSI,
	    .u.msi = {.address_lo = (uint32_t)addr,
		      .address_hi = (uint32_t)(addr >> 32),
		      .data = data},
	};
	if (install_routes(vm, err) < 0) {
		vm->nmsi_routes--;
		return -1;
	}
	return 0;
}

void vm_stop(struct vm *vm, int status, const char *why)
{
	int expected = -1;
	if (!atomic_compare_exchange_strong(&vm->status, &expected, status))
		return;
	vs_debug("VM stops: %s (exit status %d)", why, status);
	uint64_t one = 1;
	ssize_t r = write(vm->stop_fd, &one, sizeof(one));
	(void)r;
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	/* parked vCPUs (a paused VM) wait on this, not in KVM_RUN */
	pthread_mutex_lock(&vm->park_lock);
	pthread_cond_broadcast(&vm->park_cond);
	pthread_mutex_unlock(&vm->park_lock);
}

void vm_unclaimed(struct vm *vm, uint64_t addr, bool mmio, bool is_write, uint32_t len)
{
	pthread_mutex_lock(&vm->unclaimed_lock);
	struct vm_unclaimed *u = NULL;
	for (size_t i = 0; i < VM_UNCLAIMED_SLOTS; i++) {
		struct vm_unclaimed *s = &vm->unclaimed[i];
		if (s->reads + s->writes && s->addr == addr && s->mmio == mmio) {
			u = s;
			break;
		}
		if (!(s->reads + s->writes)) {
			*s = (struct vm_unclaimed){.addr = addr, .mmio = mmio};
			u = s;
			vs_debug("unclaimed %s %s 0x%llx (%u bytes)", mmio ? "MMIO" : "port",
				 is_write ? "write" : "read", (unsigned long long)addr, len);
			break;
		}
	}
	if (!u)
		vm->unclaimed_other++;
	else if (is_write)
		u->writes++;
	else
		u->reads++;
	pthread_mutex_unlock(&vm->unclaimed_lock);
}

void vm_log_unclaimed(struct vm *vm)
{
	if (!vs_log_debug_enabled())
		return;
	for (size_t i = 0; i < VM_UNCLAIMED_SLOTS; i++) {
		struct vm_unclaimed *u = &vm->unclaimed[i];
		if (u->reads + u->writes)
			vs_debug("unclaimed %s 0x%llx: %llu reads, %llu writes",
				 u->mmio ? "MMIO" : "port", (unsigned long long)u->addr,
				 (unsigned long long)u->reads, (unsigned long long)u->writes);
	}
	if (vm->unclaimed_other)
		vs_debug("unclaimed accesses at other addresses: %llu",
			 (unsigned long long)vm->unclaimed_other);
}
