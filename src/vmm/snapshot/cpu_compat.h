/* Whether a guest that saw one CPUID table can go on under another: a snapshot's vCPU
 * against the table this host's KVM would give a vCPU of a cold boot (cpuid_build of
 * KVM_GET_SUPPORTED_CPUID). Checked before anything of the VM is built, so a snapshot of
 * another CPU is one clear line, not a half-made VM that KVM_SET_CPUID2 refuses. */
#ifndef VESSEL_VMM_SNAPSHOT_CPU_COMPAT_H
#define VESSEL_VMM_SNAPSHOT_CPU_COMPAT_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"

/* Refuses another vendor, another family, and any feature bit the guest may use (the
 * feature leaves 1, 7, 0xD, 0x80000001, 0x80000007, 0x80000008 and KVM's 0x40000001) that
 * the snapshot's table has and the host's lacks, naming them all. Bits the guest itself
 * turns on (OSXSAVE, OSPKE) are not the CPU's. Another model or stepping of the same
 * family is allowed: *model_differs says so (the caller logs it). Pure. */
int cpu_compat_check(const struct kvm_cpuid_entry2 *saved, size_t n,
		     const struct kvm_cpuid_entry2 *host, size_t m, bool *model_differs,
		     vs_err_t *err);

/* "GenuineIntel family 0x6 model 0x55 stepping 4" of a table (for messages). */
void cpu_compat_describe(const struct kvm_cpuid_entry2 *e, size_t n, char *out, size_t len);

#endif
