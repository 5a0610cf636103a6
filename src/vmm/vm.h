/* A KVM virtual machine: RAM slots, in-kernel irqchip and PIT, the two buses,
 * its vCPUs, and how it stops (first stop request wins, everyone is kicked). */
#ifndef VESSEL_VMM_VM_H
#define VESSEL_VMM_VM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "vmm/bus.h"
#include "vmm/device.h"
#include "vmm/exit_status.h"
#include "vmm/memory.h"

struct vcpu;
struct vm;

#define VM_UNCLAIMED_SLOTS 32

/* A doorbell: a guest write of len bytes at addr (of value data, when datamatch)
 * signals fd without an exit to vessel. */
struct vm_doorbell {
	uint64_t addr;
	uint32_t len;
	bool mmio;
	bool datamatch;
	uint64_t data;
	int fd;
};

/* The interrupt and doorbell plumbing devices reach through the VM's functions.
 * vm_create installs KVM's; vm_create_detached takes another (a unit test's fake), so
 * a device and its transport run without /dev/kvm. */
struct vm_ops {
	void (*irq_line)(struct vm *vm, unsigned gsi, int level);
	int (*irqfd)(struct vm *vm, int fd, unsigned gsi, bool assign, vs_err_t *err);
	int (*doorbell)(struct vm *vm, const struct vm_doorbell *d, bool assign, vs_err_t *err);
};

struct vm_unclaimed {
	uint64_t addr;
	uint64_t reads, writes;
	bool mmio;
};

struct vm {
	const struct vm_ops *ops;
	void *ops_ctx; /* the fake's own state (detached VMs) */
	int kvm_fd, vm_fd;
	unsigned ncpus;
	struct guest_mem mem;
	struct bus pio, mmio;
	struct kvm_cpuid2 *cpuid; /* KVM's supported table, shared by all vCPUs */
	int run_size;		  /* mmap size of struct kvm_run */
	struct vcpu *vcpus;
	bool dirty_log;		   /* the RAM slots have KVM_MEM_LOG_DIRTY_PAGES (diff snapshots) */
	/* The RAM came with its contents (a snapshot's memory file, a local migration's memfd
	 * that the source still runs on): building the devices writes nothing into it. */
	bool ram_given;
	struct machine_ctl ctl;	   /* devices stop the VM through this */
	struct vm_device *devices; /* every device, in the order added (device.h) */

	/* Pause (vcpu.c): while park_req, every vCPU waits outside KVM_RUN; nparked counts
	 * those waiting. park_cond signals a change of either (and vm_stop). */
	pthread_mutex_t park_lock;
	pthread_cond_t park_cond;
	atomic_bool park_req;
	unsigned nparked;

	/* kvmclock as it read at pause (vm_clock_hold), set back at resume and saved by a
	 * snapshot taken meanwhile, so the guest's clock does not jump over a pause. */
	bool clock_held;
	struct kvm_clock_data held_clock;

	atomic_int status; /* -1 while running, else the exit status */
	int stop_fd;	   /* eventfd: the main loop wakes when the VM stops */

	struct kvm_irq_routing_entry *msi_routes;
	size_t nmsi_routes;

	pthread_mutex_t unclaimed_lock;
	struct vm_unclaimed unclaimed[VM_UNCLAIMED_SLOTS];
	uint64_t unclaimed_other; /* accesses past the table's slots */
};

/* Opens the KVM device (VESSEL_KVM_DEVICE overrides /dev/kvm) with hints on failure. */
int vm_open_kvm(int *kvm_fd, vs_err_t *err);
/* KVM_CAP_MAX_VCPUS (falls back to NR_VCPUS, then 4, as the API documents). */
unsigned vm_max_vcpus(int kvm_fd);

/* mem_flags: GUEST_MEM_* */
int vm_create(struct vm *vm, int kvm_fd, unsigned ncpus, uint64_t mem_size, unsigned mem_flags,
	      vs_err_t *err);
/* The same with guest RAM mapped MAP_PRIVATE from a snapshot's memory file of exactly
 * mem_size bytes (guest_mem_map_file). */
int vm_create_from_file(struct vm *vm, int kvm_fd, unsigned ncpus, uint64_t mem_size,
			const char *mem_file, vs_err_t *err);
/* The same with guest RAM mapped MAP_SHARED from a memfd another VMM handed over (a local
 * migration; guest_mem_map_fd, which duplicates mem_fd). */
int vm_create_from_fd(struct vm *vm, int kvm_fd, unsigned ncpus, uint64_t mem_size, int mem_fd,
		      vs_err_t *err);
/* KVM's dirty log of guest writes to RAM, for diff snapshots: on/off re-registers the
 * slots; take ORs the pages written since the last take into out (one bit per 4 KiB page
 * of host offset, guest_mem_npages bits) and clears KVM's log. */
int vm_dirty_log(struct vm *vm, bool on, vs_err_t *err);
int vm_take_dirty_log(struct vm *vm, uint64_t *out, vs_err_t *err);
/* With every vCPU parked: hold reads kvmclock (KVM_GET_CLOCK), release sets it back
 * (KVM_SET_CLOCK), so the time the VM spent paused does not show in the guest. */
int vm_clock_hold(struct vm *vm, vs_err_t *err);
int vm_clock_release(struct vm *vm, vs_err_t *err);

/* A VM without KVM: guest RAM (mem_size, unregistered), the buses, a stop eventfd and
 * no vCPUs; ops does the plumbing. vm_destroy frees it. */
int vm_create_detached(struct vm *vm, const struct vm_ops *ops, void *ops_ctx, uint64_t mem_size,
		       vs_err_t *err);
/* Frees the devices first (their workers touch guest RAM), then the rest. */
void vm_destroy(struct vm *vm);

/* Level of an IOAPIC/PIC input line (KVM_IRQ_LINE). vm is a struct vm * (the signature
 * of struct irq_line's set). */
void vm_irq_line(void *vm, unsigned gsi, int level);
/* Interrupt and doorbell plumbing for devices that live off the vCPU threads
 * (virtio): an eventfd that raises gsi, and one that a guest write signals. Devices
 * reach KVM only through these (vm->ops). */
int vm_irqfd(struct vm *vm, int fd, unsigned gsi, vs_err_t *err);
int vm_irqfd_remove(struct vm *vm, int fd, unsigned gsi, vs_err_t *err);
int vm_doorbell(struct vm *vm, const struct vm_doorbell *d, vs_err_t *err);
int vm_doorbell_remove(struct vm *vm, const struct vm_doorbell *d, vs_err_t *err);

/* GSI routing: KVM's default (PIC 0-15, IOAPIC 0-23) plus MSI routes (for MSI-X devices
 * later). Each call installs the whole table again, as KVM_SET_GSI_ROUTING wants. */
#define VM_IOAPIC_PINS 24
int vm_route_msi(struct vm *vm, unsigned gsi, uint64_t addr, uint32_t data, vs_err_t *err);

/* Ends the VM with status (first caller wins): wakes the main loop, kicks vCPUs. */
void vm_stop(struct vm *vm, int status, const char *why);
static inline bool vm_stopping(struct vm *vm)
{
	return atomic_load(&vm->status) >= 0;
}

/* Counts an access nobody claimed (reads of it return all ones). */
void vm_unclaimed(struct vm *vm, uint64_t addr, bool mmio, bool is_write, uint32_t len);
void vm_log_unclaimed(struct vm *vm);

#endif
