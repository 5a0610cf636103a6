/* vCPU architectural state: CPUID (topology, KVM paravirt leaves), MSRs, FPU,
 * LAPIC lines, and the register state each boot protocol enters with. */
#ifndef VESSEL_VMM_BOOT_CPU_H
#define VESSEL_VMM_BOOT_CPU_H

#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "vmm/memory.h"

#define KVM_CPUID_SIGNATURE_LEAF 0x40000000u
#define KVM_CPUID_FEATURES_LEAF 0x40000001u

/* The CPUID table for vCPU `id` of `ncpus`, from KVM's supported one: APIC ids in
 * leaves 1, 0xB and 0x1F, a flat topology (one thread per core, ncpus cores), the
 * hypervisor bit and KVM's signature/feature leaves. Pure. Returns the entry count,
 * or -1 if cap is too small. */
int cpuid_build(const struct kvm_cpuid_entry2 *sup, size_t n, unsigned id, unsigned ncpus,
		struct kvm_cpuid_entry2 *out, size_t cap);

/* The XCR0 a vCPU starts with: every user state component of leaf 0xD.0 (EDX:EAX), 0
 * when the table offers no XSAVE. Pure. */
uint64_t cpuid_xcr0(const struct kvm_cpuid_entry2 *e, size_t n);

/* What KVM supports, read once and shared by every vCPU (free with free()). */
struct kvm_cpuid2 *cpu_supported_cpuid(int kvm_fd, vs_err_t *err);

/* CPUID, MSRs, FPU and LAPIC LINT0/LINT1 of a fresh vCPU. */
int cpu_init(int vcpu_fd, const struct kvm_cpuid2 *sup, unsigned id, unsigned ncpus, vs_err_t *err);

/* BSP entry state. PVH: 32-bit protected mode, paging off, EBX = start info.
 * Long mode: 64-bit with identity-mapped 4 GiB, RSI = boot_params. */
int cpu_enter_pvh(int vcpu_fd, struct guest_mem *m, uint64_t entry, uint64_t start_info,
		  vs_err_t *err);
int cpu_enter_long64(int vcpu_fd, struct guest_mem *m, uint64_t entry, uint64_t boot_params,
		     vs_err_t *err);

#endif
