/* CPUID table per vCPU: APIC ids, topology and KVM's paravirtual leaves. */
#include <criterion/criterion.h>
#include <string.h>

#include "vmm/boot/cpu.h"

static const struct kvm_cpuid_entry2 *leaf(const struct kvm_cpuid_entry2 *e, int n, uint32_t fn,
					   uint32_t idx)
{
	for (int i = 0; i < n; i++)
		if (e[i].function == fn && e[i].index == idx)
			return &e[i];
	return NULL;
}

static const struct kvm_cpuid_entry2 sup[] = {
    {.function = 0, .eax = 0x1f},
    {.function = 1, .eax = 0x806f8, .ebx = 0xff000800, .ecx = 0x7ffafbff, .edx = 0x0f8bfbff},
    {.function = 4, .index = 0, .eax = 0xfc004121},
    {.function = 0xb, .index = 0, .eax = 1, .ebx = 2, .ecx = 0x100, .edx = 7},
    {.function = 0xb, .index = 1, .eax = 4, .ebx = 16, .ecx = 0x201, .edx = 7},
    {.function = 0xb, .index = 2, .ecx = 2},
    {.function = 0x1f, .index = 0},
    {.function = 0x1f, .index = 1},
    {.function = 0x40000001, .eax = 0x1234},
};

Test(cpuid, apic_ids_and_topology)
{
	struct kvm_cpuid_entry2 out[32];
	int n = cpuid_build(sup, sizeof(sup) / sizeof(sup[0]), 3, 4, out, 32);
	cr_assert_eq(n, (int)(sizeof(sup) / sizeof(sup[0])) + 1, "signature leaf added");
	const struct kvm_cpuid_entry2 *l1 = leaf(out, n, 1, 0);
	cr_assert_eq(l1->ebx >> 24, 3, "initial APIC id");
	cr_assert_eq((l1->ebx >> 16) & 0xff, 4, "logical processors");
	cr_assert_eq(l1->ebx & 0xffff, 0x0800, "CLFLUSH size kept");
	cr_assert(l1->ecx & (1u << 31), "hypervisor bit");
	cr_assert(l1->edx & (1u << 28), "HTT with more than one CPU");
	for (uint32_t fn = 0xb; fn <= 0x1f; fn += 0x14) {
		const struct kvm_cpuid_entry2 *smt = leaf(out, n, fn, 0),
					      *core = leaf(out, n, fn, 1);
		cr_assert_eq(smt->edx, 3, "x2APIC id");
		cr_assert_eq(smt->ebx, 1);
		cr_assert_eq((smt->ecx >> 8) & 0xff, 1, "SMT level");
		cr_assert_eq(core->edx, 3);
		cr_assert_eq(core->eax, 2, "4 cores need 2 bits");
		cr_assert_eq(core->ebx, 4);
		cr_assert_eq((core->ecx >> 8) & 0xff, 2, "core level");
	}
	const struct kvm_cpuid_entry2 *l4 = leaf(out, n, 4, 0);
	cr_assert_eq(l4->eax >> 26, 3, "cores per package - 1");
	cr_assert_eq(l4->eax & 0x3fff, 0x0121);
}

Test(cpuid, kvm_leaves)
{
	struct kvm_cpuid_entry2 out[32];
	int n = cpuid_build(sup, sizeof(sup) / sizeof(sup[0]), 0, 1, out, 32);
	const struct kvm_cpuid_entry2 *sig = leaf(out, n, 0x40000000, 0);
	cr_assert_not_null(sig);
	char id[13] = {0};
	memcpy(id, &sig->ebx, 4);
	memcpy(id + 4, &sig->ecx, 4);
	memcpy(id + 8, &sig->edx, 4);
	cr_assert_str_eq(id, "KVMKVMKVM");
	cr_assert_eq(sig->eax, 0x40000001);
	cr_assert_eq(leaf(out, n, 0x40000001, 0)->eax, 0x1234, "KVM's own feature bits kept");
	cr_assert_not(leaf(out, n, 1, 0)->edx & (1u << 28) && !(sup[1].edx & (1u << 28)));
}

Test(cpuid, adds_features_leaf_when_missing_and_checks_room)
{
	struct kvm_cpuid_entry2 out[4];
	int n = cpuid_build(sup, 2, 0, 1, out, 4);
	cr_assert_eq(n, 4);
	const struct kvm_cpuid_entry2 *f = leaf(out, n, 0x40000001, 0);
	cr_assert(f->eax & (1u << 3), "kvm-clock (CLOCKSOURCE2)");
	cr_assert_eq(cpuid_build(sup, 2, 0, 1, out, 3), -1);
}

Test(cpuid, xcr0_is_every_user_state_component_of_leaf_d)
{
	struct kvm_cpuid_entry2 xs[] = {
	    {.function = 1, .ecx = 1u << 26}, /* XSAVE */
	    {.function = 0xd, .index = 0, .eax = 0x2e7, .ebx = 0x240, .ecx = 0xa88, .edx = 0},
	    {.function = 0xd, .index = 1, .eax = 0xf, .ecx = 0x1800}, /* supervisor: not XCR0 */
	};
	cr_assert_eq(cpuid_xcr0(xs, 3), 0x2e7);
	xs[1].edx = 0x1;
	cr_assert_eq(cpuid_xcr0(xs, 3), 0x1000002e7ULL, "bits past 31 come from EDX");
	xs[0].ecx = 0;
	cr_assert_eq(cpuid_xcr0(xs, 3), 0, "no XSAVE: XCR0 is not set");
	xs[0].ecx = 1u << 26;
	xs[1].eax = 0x6;
	xs[1].edx = 0;
	cr_assert_eq(cpuid_xcr0(xs, 3), 0, "a leaf without x87 is not trusted");
	cr_assert_eq(cpuid_xcr0(xs, 1), 0, "no leaf 0xD");
}

Test(cpuid, hides_vmx_and_svm)
{
	/* KVM offers both to a VMM that wants nested virtualization; vessel does not */
	static const struct kvm_cpuid_entry2 nested[] = {
	    {.function = 1, .ecx = 0x7ffafbff | (1u << 5)},
	    {.function = 0x80000001, .ecx = 0x1f3 | (1u << 2), .edx = 0x2fd3fbff},
	};
	struct kvm_cpuid_entry2 out[8];
	int n = cpuid_build(nested, 2, 0, 1, out, 8);
	cr_assert_gt(n, 2);
	cr_assert_not(leaf(out, n, 1, 0)->ecx & (1u << 5), "VMX hidden");
	cr_assert_eq(leaf(out, n, 1, 0)->ecx & ~(1u << 5), (0x7ffafbff | (1u << 31)) & ~(1u << 5),
		     "the other leaf 1 ECX bits kept");
	cr_assert_eq(leaf(out, n, 0x80000001, 0)->ecx, 0x1f3, "SVM hidden, the rest kept");
	cr_assert_eq(leaf(out, n, 0x80000001, 0)->edx, 0x2fd3fbff);
}
