/* KVM's vCPU and VM state to and from state-file sections (see kvm_state.h). */
#include "vmm/snapshot/kvm_state.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define MSR_IA32_TSC 0x10
#define MAX_MSRS 1024
#define MAX_CPUID 256

struct fixed_state {
	const char *name;
	unsigned long get, set;
	size_t size;
};

/* Fixed-size vCPU state in the order it is set back: mp_state before regs (a halted vCPU
 * stays halted), sregs before XSAVE/XCRs (CR4.OSXSAVE), LAPIC before events. MSRs go
 * between LAPIC and events (Firecracker's order); see restore. */
static const struct fixed_state vcpu_fixed[] = {
    {"vcpu.mp_state", KVM_GET_MP_STATE, KVM_SET_MP_STATE, sizeof(struct kvm_mp_state)},
    {"vcpu.regs", KVM_GET_REGS, KVM_SET_REGS, sizeof(struct kvm_regs)},
    {"vcpu.sregs", KVM_GET_SREGS, KVM_SET_SREGS, sizeof(struct kvm_sregs)},
    {"vcpu.xsave", KVM_GET_XSAVE, KVM_SET_XSAVE, sizeof(struct kvm_xsave)},
    {"vcpu.xcrs", KVM_GET_XCRS, KVM_SET_XCRS, sizeof(struct kvm_xcrs)},
    {"vcpu.debugregs", KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS, sizeof(struct kvm_debugregs)},
    {"vcpu.lapic", KVM_GET_LAPIC, KVM_SET_LAPIC, sizeof(struct kvm_lapic_state)},
};

static const struct fixed_state vcpu_events = {"vcpu.events", KVM_GET_VCPU_EVENTS,
					       KVM_SET_VCPU_EVENTS, sizeof(struct kvm_vcpu_events)};

/* Every MSR KVM lists, TSC first so a restored TSC_DEADLINE is relative to the right TSC.
 * An MSR KVM lists but can't read here (a feature this CPU lacks) is left out: KVM_GET_MSRS
 * stops at the first one it fails, so that one is dropped and the rest read again. */
static int save_msrs(struct vcpu *c, struct snap_writer *w, vs_err_t *err)
{
	struct kvm_msr_list *list = calloc(1, sizeof(*list) + MAX_MSRS * sizeof(uint32_t));
	struct kvm_msrs *m = calloc(1, sizeof(*m) + MAX_MSRS * sizeof(struct kvm_msr_entry));
	int rc = -1;
	if (!list || !m) {
		vs_err(err, ENOMEM, "vCPU %u: MSR list", c->id);
		goto out;
	}
	list->nmsrs = MAX_MSRS;
	if (ioctl(c->vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		vs_err(err, errno, "KVM_GET_MSR_INDEX_LIST");
		goto out;
	}
	uint32_t n = 0;
	m->entries[n++].index = MSR_IA32_TSC;
	for (uint32_t i = 0; i < list->nmsrs && n < MAX_MSRS; i++)
		if (list->indices[i] != MSR_IA32_TSC)
			m->entries[n++].index = list->indices[i];
	uint32_t done = 0;
	while (done < n) {
		struct kvm_msrs *chunk =
		    calloc(1, sizeof(*chunk) + (n - done) * sizeof(struct kvm_msr_entry));
		if (!chunk) {
			vs_err(err, ENOMEM, "vCPU %u: MSRs", c->id);
			goto out;
		}
		chunk->nmsrs = n - done;
		memcpy(chunk->entries, &m->entries[done], chunk->nmsrs * sizeof(chunk->entries[0]));
		int got = ioctl(c->fd, KVM_GET_MSRS, chunk);
		if (got < 0) {
			free(chunk);
			vs_err(err, errno, "vCPU %u: KVM_GET_MSRS", c->id);
			goto out;
		}
		memcpy(&m->entries[done], chunk->entries, (size_t)got * sizeof(chunk->entries[0]));
		free(chunk);
		done += (uint32_t)got;
		if (done < n) { /* drop the unreadable one */
			memmove(&m->entries[done], &m->entries[done + 1],
				(n - done - 1) * sizeof(m->entries[0]));
			n--;
		}
	}
	if (snap_writer_add(w, "vcpu.msrs", c->id, m->entries, n * sizeof(m->entries[0]), err) < 0)
		goto out;
	rc = 0;
out:
	free(list);
	free(m);
	return rc;
}

int kvm_state_save_vcpu(struct vcpu *c, struct snap_writer *w, vs_err_t *err)
{
	union fixed_buf {
		struct kvm_mp_state mp;
		struct kvm_regs regs;
		struct kvm_sregs sregs;
		struct kvm_xsave xsave;
		struct kvm_xcrs xcrs;
		struct kvm_debugregs debugregs;
		struct kvm_lapic_state lapic;
		struct kvm_vcpu_events events;
	};
	uint8_t *buf = malloc(sizeof(union fixed_buf));
	if (!buf)
		return vs_err(err, ENOMEM, "vCPU %u state", c->id);
	int rc = -1;
	for (size_t i = 0; i < sizeof(vcpu_fixed) / sizeof(vcpu_fixed[0]); i++) {
		const struct fixed_state *s = &vcpu_fixed[i];
		memset(buf, 0, s->size);
		if (ioctl(c->fd, s->get, buf) < 0) {
			vs_err(err, errno, "vCPU %u: read %s", c->id, s->name);
			goto out;
		}
		if (snap_writer_add(w, s->name, c->id, buf, s->size, err) < 0)
			goto out;
	}
	memset(buf, 0, vcpu_events.size);
	if (ioctl(c->fd, vcpu_events.get, buf) < 0) {
		vs_err(err, errno, "vCPU %u: read %s", c->id, vcpu_events.name);
		goto out;
	}
	if (snap_writer_add(w, vcpu_events.name, c->id, buf, vcpu_events.size, err) < 0)
		goto out;
	if (save_msrs(c, w, err) < 0)
		goto out;

	struct kvm_cpuid2 *cpuid =
	    calloc(1, sizeof(*cpuid) + MAX_CPUID * sizeof(struct kvm_cpuid_entry2));
	if (!cpuid) {
		vs_err(err, ENOMEM, "vCPU %u: CPUID", c->id);
		goto out;
	}
	cpuid->nent = MAX_CPUID;
	if (ioctl(c->fd, KVM_GET_CPUID2, cpuid) < 0) {
		vs_err(err, errno, "vCPU %u: KVM_GET_CPUID2", c->id);
		free(cpuid);
		goto out;
	}
	/* Seen in the emulated KVM host (kvm_amd): nent came back as the buffer's size, the
	 * rest of the entries still zero. No real entry is all zero; drop those. */
	static const struct kvm_cpuid_entry2 zero_entry;
	uint32_t kept = 0;
	for (uint32_t i = 0; i < cpuid->nent && i < MAX_CPUID; i++)
		if (memcmp(&cpuid->entries[i], &zero_entry, sizeof(zero_entry)) != 0)
			cpuid->entries[kept++] = cpuid->entries[i];
	cpuid->nent = kept;
	int added = snap_writer_add(w, "vcpu.cpuid", c->id, cpuid->entries,
				    cpuid->nent * sizeof(cpuid->entries[0]), err);
	free(cpuid);
	if (added < 0)
		goto out;

	int khz = ioctl(c->fd, KVM_GET_TSC_KHZ, 0);
	if (khz <= 0) {
		vs_err(err, khz < 0 ? errno : 0, "vCPU %u: KVM_GET_TSC_KHZ", c->id);
		goto out;
	}
	uint32_t k = (uint32_t)khz;
	if (snap_writer_add(w, "vcpu.tsc_khz", c->id, &k, sizeof(k), err) < 0)
		goto out;
	rc = 0;
out:
	free(buf);
	return rc;
}

static void vendor_of(const struct kvm_cpuid_entry2 *e, size_t n, char out[13])
{
	memset(out, 0, 13);
	for (size_t i = 0; i < n; i++)
		if (e[i].function == 0) {
			memcpy(out, &e[i].ebx, 4);
			memcpy(out + 4, &e[i].edx, 4);
			memcpy(out + 8, &e[i].ecx, 4);
			return;
		}
}

/* The snapshot's CPUID must be one this host's KVM can give: same vendor (the guest's
 * kernel picked its code paths for it), then KVM_SET_CPUID2 itself refuses the rest. */
static int restore_cpuid(struct vcpu *c, const struct snap_section *s, vs_err_t *err)
{
	size_t esz = sizeof(struct kvm_cpuid_entry2);
	if (s->len % esz || s->len / esz > MAX_CPUID || s->len == 0)
		return vs_err(err, 0, "state file: vcpu.cpuid[%u] is %zu bytes, not a CPUID table",
			      c->id, s->len);
	size_t n = s->len / esz;
	struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + s->len);
	if (!cpuid)
		return vs_err(err, ENOMEM, "vCPU %u: CPUID", c->id);
	cpuid->nent = (uint32_t)n;
	memcpy(cpuid->entries, s->data, s->len);
	char theirs[13], ours[13];
	vendor_of(cpuid->entries, n, theirs);
	vendor_of(c->vm->cpuid->entries, c->vm->cpuid->nent, ours);
	int rc = 0;
	if (strcmp(theirs, ours) != 0)
		rc = vs_err(err, 0, "snapshot of a %s CPU, this host is %s: it cannot run here",
			    theirs[0] ? theirs : "(unknown)", ours);
	else if (ioctl(c->fd, KVM_SET_CPUID2, cpuid) < 0)
		rc = vs_err(err, errno,
			    "vCPU %u: KVM_SET_CPUID2: this host's KVM can't give the snapshot's "
			    "CPU features",
			    c->id);
	free(cpuid);
	return rc;
}

static int restore_tsc(struct vcpu *c, const struct snap_file *f, vs_err_t *err)
{
	const uint32_t *k = snap_get_exact(f, "vcpu.tsc_khz", c->id, sizeof(*k), err);
	if (!k)
		return -1;
	int ours = ioctl(c->fd, KVM_GET_TSC_KHZ, 0);
	if (ours > 0 && (uint32_t)ours == *k)
		return 0;
	if (ioctl(c->fd, KVM_SET_TSC_KHZ, (unsigned long)*k) < 0)
		return vs_err(err, errno,
			      "snapshot's TSC runs at %u kHz, this host's at %d kHz and KVM can't "
			      "scale it",
			      *k, ours);
	return 0;
}

static int restore_msrs(struct vcpu *c, const struct snap_section *s, vs_err_t *err)
{
	size_t esz = sizeof(struct kvm_msr_entry);
	if (s->len % esz || s->len / esz > MAX_MSRS)
		return vs_err(err, 0, "state file: vcpu.msrs[%u] is %zu bytes, not an MSR list",
			      c->id, s->len);
	struct kvm_msrs *m = calloc(1, sizeof(*m) + s->len);
	if (!m)
		return vs_err(err, ENOMEM, "vCPU %u: MSRs", c->id);
	m->nmsrs = (uint32_t)(s->len / esz);
	memcpy(m->entries, s->data, s->len);
	int got = ioctl(c->fd, KVM_SET_MSRS, m);
	int rc = 0;
	if (got < 0)
		rc = vs_err(err, errno, "vCPU %u: KVM_SET_MSRS", c->id);
	else if ((uint32_t)got != m->nmsrs)
		rc = vs_err(err, 0, "vCPU %u: KVM refused MSR %#x (%u of %u set)", c->id,
			    m->entries[got].index, (unsigned)got, m->nmsrs);
	free(m);
	return rc;
}

static int set_fixed(struct vcpu *c, const struct snap_file *f, const struct fixed_state *s,
		     vs_err_t *err)
{
	const void *p = snap_get_exact(f, s->name, c->id, s->size, err);
	if (!p)
		return -1;
	/* KVM's ioctls take a mutable pointer; the section is only read */
	void *copy = malloc(s->size);
	if (!copy)
		return vs_err(err, ENOMEM, "vCPU %u: %s", c->id, s->name);
	memcpy(copy, p, s->size);
	int rc = ioctl(c->fd, s->set, copy) < 0
		     ? vs_err(err, errno, "vCPU %u: KVM refused %s", c->id, s->name)
		     : 0;
	free(copy);
	return rc;
}

int kvm_state_restore_vcpu(struct vcpu *c, const struct snap_file *f, vs_err_t *err)
{
	const struct snap_section *cpuid = snap_find(f, "vcpu.cpuid", c->id);
	const struct snap_section *msrs = snap_find(f, "vcpu.msrs", c->id);
	if (!cpuid || !msrs)
		return vs_err(err, 0, "state file has no vcpu.%s[%u]", !cpuid ? "cpuid" : "msrs",
			      c->id);
	if (restore_tsc(c, f, err) < 0 || restore_cpuid(c, cpuid, err) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(vcpu_fixed) / sizeof(vcpu_fixed[0]); i++)
		if (set_fixed(c, f, &vcpu_fixed[i], err) < 0)
			return -1;
	if (restore_msrs(c, msrs, err) < 0)
		return -1;
	return set_fixed(c, f, &vcpu_events, err);
}

static const unsigned irqchips[] = {KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE,
				    KVM_IRQCHIP_IOAPIC};
static const char *const irqchip_names[] = {"vm.pic_master", "vm.pic_slave", "vm.ioapic"};

int kvm_state_save_vm(struct vm *vm, struct snap_writer *w, vs_err_t *err)
{
	for (size_t i = 0; i < 3; i++) {
		struct kvm_irqchip chip = {.chip_id = irqchips[i]};
		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip) < 0)
			return vs_err(err, errno, "KVM_GET_IRQCHIP %s", irqchip_names[i]);
		if (snap_writer_add(w, irqchip_names[i], 0, &chip, sizeof(chip), err) < 0)
			return -1;
	}
	struct kvm_pit_state2 pit;
	memset(&pit, 0, sizeof(pit));
	if (ioctl(vm->vm_fd, KVM_GET_PIT2, &pit) < 0)
		return vs_err(err, errno, "KVM_GET_PIT2");
	if (snap_writer_add(w, "vm.pit2", 0, &pit, sizeof(pit), err) < 0)
		return -1;
	/* A paused VM's clock is the one read at pause: the guest lived until then. */
	struct kvm_clock_data clock;
	memset(&clock, 0, sizeof(clock));
	if (vm->clock_held)
		clock = vm->held_clock;
	else if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &clock) < 0)
		return vs_err(err, errno, "KVM_GET_CLOCK");
	/* Only the clock's value is set back: the flags say how KVM read it, here. */
	clock.flags = 0;
	return snap_writer_add(w, "vm.clock", 0, &clock, sizeof(clock), err);
}

int kvm_state_restore_vm(struct vm *vm, const struct snap_file *f, vs_err_t *err)
{
	for (size_t i = 0; i < 3; i++) {
		const struct kvm_irqchip *p =
		    snap_get_exact(f, irqchip_names[i], 0, sizeof(*p), err);
		if (!p)
			return -1;
		struct kvm_irqchip chip;
		memcpy(&chip, p, sizeof(chip));
		if (chip.chip_id != irqchips[i])
			return vs_err(err, 0, "state file: %s holds chip %u", irqchip_names[i],
				      chip.chip_id);
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chip) < 0)
			return vs_err(err, errno, "KVM refused %s", irqchip_names[i]);
	}
	const struct kvm_pit_state2 *pp = snap_get_exact(f, "vm.pit2", 0, sizeof(*pp), err);
	if (!pp)
		return -1;
	struct kvm_pit_state2 pit;
	memcpy(&pit, pp, sizeof(pit));
	if (ioctl(vm->vm_fd, KVM_SET_PIT2, &pit) < 0)
		return vs_err(err, errno, "KVM refused vm.pit2");
	const struct kvm_clock_data *cp = snap_get_exact(f, "vm.clock", 0, sizeof(*cp), err);
	if (!cp)
		return -1;
	struct kvm_clock_data clock;
	memcpy(&clock, cp, sizeof(clock));
	clock.flags = 0;
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &clock) < 0)
		return vs_err(err, errno, "KVM refused vm.clock");
	return 0;
}
