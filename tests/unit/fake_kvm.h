/* A fake of what a device asks KVM for (struct vm_ops), for device tests on a detached VM
 * (vm_create_detached, no /dev/kvm): it records the irqfd and the doorbells (ioeventfds)
 * the transport registers, so a test plays KVM by signalling a doorbell's eventfd itself
 * and sees interrupts on the irqfd. Include after criterion.h. */
#ifndef VESSEL_TESTS_UNIT_FAKE_KVM_H
#define VESSEL_TESTS_UNIT_FAKE_KVM_H

#include <errno.h>

#include "vmm/bus.h"
#include "vmm/layout.h"
#include "vmm/vm.h"

#define FAKE_MAX_BELLS 16

struct fake {
	int irq_fd;
	unsigned gsi;
	struct vm_doorbell bells[FAKE_MAX_BELLS];
	unsigned nbells;
	int fail_doorbell_at; /* the n-th doorbell is refused (-1: none) */
	unsigned doorbells_seen;
	unsigned irqfd_removed, doorbells_removed;
};

#define FAKE_INIT ((struct fake){.irq_fd = -1, .fail_doorbell_at = -1})

static inline void fake_irq_line(struct vm *vm, unsigned gsi, int level)
{
	(void)vm, (void)gsi, (void)level;
}

static inline int fake_irqfd(struct vm *vm, int fd, unsigned gsi, bool assign, vs_err_t *err)
{
	struct fake *f = vm->ops_ctx;
	(void)err;
	if (assign) {
		f->irq_fd = fd;
		f->gsi = gsi;
	} else {
		f->irqfd_removed++;
	}
	return 0;
}

static inline int fake_doorbell(struct vm *vm, const struct vm_doorbell *d, bool assign,
				vs_err_t *err)
{
	struct fake *f = vm->ops_ctx;
	if (!assign) {
		f->doorbells_removed++;
		return 0;
	}
	if ((int)f->doorbells_seen++ == f->fail_doorbell_at)
		return vs_err(err, ENOSPC, "fake KVM_IOEVENTFD");
	cr_assert_lt(f->nbells, FAKE_MAX_BELLS);
	f->bells[f->nbells++] = *d;
	return 0;
}

static const struct vm_ops fake_ops = {
    .irq_line = fake_irq_line,
    .irqfd = fake_irqfd,
    .doorbell = fake_doorbell,
};

/* Rings queue qi's doorbell, as KVM does when the driver writes qi to QueueNotify. */
static inline void fake_kick(const struct fake *f, unsigned qi)
{
	uint64_t one = 1;
	for (unsigned i = 0; i < f->nbells; i++)
		if (f->bells[i].data == qi)
			cr_assert_eq(write(f->bells[i].fd, &one, sizeof(one)),
				     (ssize_t)sizeof(one));
}

/* A detached VM of ram bytes whose KVM is f, as a device test's setup makes it. */
static inline void fake_vm_create(struct vm *vm, struct fake *f, uint64_t ram)
{
	*f = FAKE_INIT;
	vs_err_t err = NULL;
	cr_assert_eq(vm_create_detached(vm, &fake_ops, f, ram, &err), 0, "%s", err ? err->msg : "");
}

/* The guest's side of the first virtio-mmio device: 32-bit register accesses through the
 * MMIO bus, as a vCPU makes them. */
static inline uint32_t fake_mmio_rd(struct vm *vm, uint64_t off)
{
	uint32_t v = 0;
	cr_assert(bus_access(&vm->mmio, LAYOUT_VIRTIO_MMIO + off, (uint8_t *)&v, 4, false));
	return v;
}

static inline void fake_mmio_wr(struct vm *vm, uint64_t off, uint32_t v)
{
	cr_assert(bus_access(&vm->mmio, LAYOUT_VIRTIO_MMIO + off, (uint8_t *)&v, 4, true));
}

#endif
