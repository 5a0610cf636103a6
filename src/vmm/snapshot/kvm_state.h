/* KVM's part of a snapshot: each vCPU's registers and the VM-wide chips and clock, as
 * sections of the state file. Called with every vCPU parked outside KVM_RUN. */
#ifndef VESSEL_VMM_SNAPSHOT_KVM_STATE_H
#define VESSEL_VMM_SNAPSHOT_KVM_STATE_H

#include "base/error.h"
#include "vmm/snapshot/state_file.h"

struct vcpu;
struct vm;

/* regs, sregs, XSAVE, XCRs, debug registers, MSRs (every one KVM_GET_MSR_INDEX_LIST names
 * that reads), LAPIC, mp_state, vcpu events, CPUID and TSC frequency, as vcpu.*[id]. */
int kvm_state_save_vcpu(struct vcpu *c, struct snap_writer *w, vs_err_t *err);
/* Sets them back in the order KVM needs (TSC frequency and CPUID first, events last).
 * Refuses a snapshot of another CPU vendor or of a TSC frequency this host can't give. */
int kvm_state_restore_vcpu(struct vcpu *c, const struct snap_file *f, vs_err_t *err);

/* PIC master/slave, IOAPIC, PIT2 and kvmclock, as vm.*[0]. */
int kvm_state_save_vm(struct vm *vm, struct snap_writer *w, vs_err_t *err);
int kvm_state_restore_vm(struct vm *vm, const struct snap_file *f, vs_err_t *err);

#endif
