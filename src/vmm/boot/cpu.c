#include "vmm/boot/cpu.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "base/log.h"
#include "base/util.h"
#include "vmm/layout.h"

#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_ECX_VMX (1u << 5)
#define CPUID_80000001_ECX_SVM (1u << 2)
#define CPUID_1_EDX_HTT (1u << 28)
#define CPUID_1_ECX_XSAVE (1u << 26)
#define CPUID_XSTATE_LEAF 0xdu
#define XFEATURE_X87 1ULL
#define KVM_FEATURE_CLOCKSOURCE (1u << 0)
#define KVM_FEATURE_CLOCKSOURCE2 (1u << 3)
#define KVM_FEATURE_CLOCKSOURCE_STABLE_BIT (1u << 24)

#define MSR_IA32_TSC 0x10
#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102
#define MISC_ENABLE_FAST_STRING 1ULL
#define MTRR_ENABLE (1ULL << 11)
#define MTRR_TYPE_WB 6ULL

#define CR0_PE 0x1ULL
#define CR0_ET 0x10ULL
#define CR0_NE 0x20ULL
#define CR0_PG 0x80000000ULL
#define CR4_PAE 0x20ULL
#define EFER_LME 0x100ULL
#define EFER_LMA 0x400ULL

#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

static unsigned bits_for(unsigned n)
{
	unsigned b = 0;
	while ((1u << b) < n)
		b++;
	return b;
}

static void topology_leaf(struct kvm_cpuid_entry2 *e, unsigned id, unsigned ncpus)
{
	/* level 0: SMT (1 thread per core); level 1: cores; then the terminator */
	switch (e->index) {
	case 0:
		e->eax = 0;
		e->ebx = 1;
		e->ecx = (1u << 8) | 0;
		break;
	case 1:
		e->eax = bits_for(ncpus);
		e->ebx = ncpus;
		e->ecx = (2u << 8) | 1;
		break;
	default:
		e->eax = 0;
		e->ebx = 0;
		e->ecx = e->index & 0xff;
		break;
	}
	e->edx = id;
}

int cpuid_build(const struct kvm_cpuid_entry2 *sup, size_t n, unsigned id, unsigned ncpus,
		struct kvm_cpuid_entry2 *out, size_t cap)
{
	size_t m = 0;
	bool has_sig = false, has_features = false;
	for (size_t i = 0; i < n; i++) {
		if (m == cap)
			return -1;
		struct kvm_cpuid_entry2 e = sup[i];
		switch (e.function) {
		case 1:
			e.ebx = (e.ebx & 0x0000ffff) | ((id & 0xff) << 24) |
				((ncpus > 255 ? 255 : ncpus) << 16);
			e.ecx |= CPUID_1_ECX_HYPERVISOR;
			/* no nested virtualization is offered: a Linux guest that sees VMX or
			 * SVM tries to switch it off on every restart, with an NMI shootdown
			 * of the other CPUs first, and its restart then never arrives */
			e.ecx &= ~CPUID_1_ECX_VMX;
			if (ncpus > 1)
				e.edx |= CPUID_1_EDX_HTT;
			break;
		case 4:
			/* cores per package, and one thread per cache below it */
			e.eax &= 0x3fff;
			e.eax |= ((ncpus - 1 > 63 ? 63 : ncpus - 1) & 0x3f) << 26;
			break;
		case 0xb:
		case 0x1f:
			topology_leaf(&e, id, ncpus);
			break;
		case 0x80000001:
			e.ecx &= ~CPUID_80000001_ECX_SVM;
			break;
		case KVM_CPUID_SIGNATURE_LEAF:
			has_sig = true;
			break;
		case KVM_CPUID_FEATURES_LEAF:
			has_features = true;
			break;
		default:
			break;
		}
		out[m++] = e;
	}
	if (!has_sig) {
		if (m == cap)
			return -1;
		out[m++] = (struct kvm_cpuid_entry2){.function = KVM_CPUID_SIGNATURE_LEAF};
	}
	if (!has_features) {
		if (m == cap)
			return -1;
		out[m++] = (struct kvm_cpuid_entry2){.function = KVM_CPUID_FEATURES_LEAF,
						     .eax = KVM_FEATURE_CLOCKSOURCE |
							    KVM_FEATURE_CLOCKSOURCE2 |
							    KVM_FEATURE_CLOCKSOURCE_STABLE_BIT};
	}
	/* "KVMKVMKVM\0\0\0" tells the guest it runs on KVM: paravirt clock and friends */
	for (size_t i = 0; i < m; i++) {
		if (out[i].function != KVM_CPUID_SIGNATURE_LEAF)
			continue;
		out[i].eax = KVM_CPUID_FEATURES_LEAF;
		memcpy(&out[i].ebx, "KVMK", 4);
		memcpy(&out[i].ecx, "VMKV", 4);
		memcpy(&out[i].edx, "M\0\0\0", 4);
	}
	return (int)m;
}

uint64_t cpuid_xcr0(const struct kvm_cpuid_entry2 *e, size_t n)
{
	bool xsave = false;
	uint64_t mask = 0;
	for (size_t i = 0; i < n; i++) {
		if (e[i].function == 1)
			xsave = e[i].ecx & CPUID_1_ECX_XSAVE;
		else if (e[i].function == CPUID_XSTATE_LEAF && e[i].index == 0)
			mask = ((uint64_t)e[i].edx << 32) | e[i].eax;
	}
	if (!xsave || !(mask & XFEATURE_X87))
		return 0;
	return mask;
}

struct kvm_cpuid2 *cpu_supported_cpuid(int kvm_fd, vs_err_t *err)
{
	for (unsigned nent = 256; nent <= 4096; nent *= 2) { /* 256: KVM_MAX_CPUID_ENTRIES */
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));
		if (!c) {
			vs_err(err, ENOMEM, "KVM_GET_SUPPORTED_CPUID");
			return NULL;
		}
		c->nent = nent;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		int e = errno;
		free(c);
		if (e != E2BIG) {
			vs_err(err, e, "KVM_GET_SUPPORTED_CPUID");
			return NULL;
		}
	}
	vs_err(err, E2BIG, "KVM_GET_SUPPORTED_CPUID");
	return NULL;
}

static int set_cpuid(int fd, const struct kvm_cpuid2 *sup, unsigned id, unsigned ncpus,
		     vs_err_t *err)
{
	size_t cap = sup->nent + 2;
	cleanup_free struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + cap * sizeof(c->entries[0]));
	if (!c)
		return vs_err(err, ENOMEM, "vCPU %u: CPUID", id);
	int n = cpuid_build(sup->entries, sup->nent, id, ncpus, c->entries, cap);
	if (n < 0)
		return vs_err(err, 0, "vCPU %u: CPUID table too large", id);
	c->nent = (uint32_t)n;
	if (ioctl(fd, KVM_SET_CPUID2, c) < 0)
		return vs_err(err, errno, "vCPU %u: KVM_SET_CPUID2", id);
	return 0;
}

/* KVM answers CPUID.(0xD,0).EBX, the XSAVE area size, for the XCR0 it last saw the
 * guest set: x87 alone (576 bytes) until the guest's XSETBV exits to KVM. Starting the
 * vCPU with every user state component the table offers, the XCR0 Linux itself
 * enables, makes the size right from the start; it also holds where the guest's
 * XSETBV never reaches KVM (nested under QEMU TCG, whose SVM does not intercept it:
 * docs/vm.md). A guest that enables less still exits to KVM on real hardware, which
 * then recomputes. A KVM that refuses the mask leaves XCR0 at its reset value. */
static void set_xcr0(int fd, const struct kvm_cpuid2 *sup, unsigned id)
{
	uint64_t mask = cpuid_xcr0(sup->entries, sup->nent);
	if (!mask)
		return;
	struct kvm_xcrs x = {.nr_xcrs = 1, .xcrs[0] = {.xcr = 0, .value = mask}};
	if (ioctl(fd, KVM_SET_XCRS, &x) < 0)
		vs_debug("vCPU %u: KVM_SET_XCRS XCR0=0x%llx: %s", id, (unsigned long long)mask,
			 strerror(errno));
}

static int set_msrs(int fd, unsigned id, vs_err_t *err)
{
	static const struct {
		uint32_t index;
		uint64_t value;
	} init[] = {
	    {MSR_IA32_SYSENTER_CS, 0},
	    {MSR_IA32_SYSENTER_ESP, 0},
	    {MSR_IA32_SYSENTER_EIP, 0},
	    {MSR_STAR, 0},
	    {MSR_CSTAR, 0},
	    {MSR_KERNEL_GS_BASE, 0},
	    {MSR_SYSCALL_MASK, 0},
	    {MSR_LSTAR, 0},
	    {MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING},
	    {MSR_MTRR_DEF_TYPE, MTRR_ENABLE | MTRR_TYPE_WB},
	};
	const size_t n = sizeof(init) / sizeof(init[0]);
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[sizeof(init) / sizeof(init[0])];
	} msrs = {.hdr.nmsrs = (uint32_t)n};
	for (size_t i = 0; i < n; i++) {
		msrs.e[i].index = init[i].index;
		msrs.e[i].data = init[i].value;
	}
	int r = ioctl(fd, KVM_SET_MSRS, &msrs);
	if (r < 0)
		return vs_err(err, errno, "vCPU %u: KVM_SET_MSRS", id);
	/* KVM stops at the first MSR it refuses: say which, then go on without it */
	if ((size_t)r < n)
		vs_debug("vCPU %u: KVM refused MSR 0x%x", id, init[r].index);
	return 0;
}

static int set_lapic_lines(int fd, unsigned id, vs_err_t *err)
{
	struct kvm_lapic_state l;
	if (ioctl(fd, KVM_GET_LAPIC, &l) < 0)
		return vs_err(err, errno, "vCPU %u: KVM_GET_LAPIC", id);
	uint32_t lvt0, lvt1;
	memcpy(&lvt0, l.regs + APIC_LVT0, 4);
	memcpy(&lvt1, l.regs + APIC_LVT1, 4);
	/* virtual-wire mode, as firmware leaves it: LINT0 = ExtINT (the PIC), LINT1 = NMI */
	lvt0 = (lvt0 & ~0x10700u) | (APIC_MODE_EXTINT << 8);
	lvt1 = (lvt1 & ~0x10700u) | (APIC_MODE_NMI << 8);
	memcpy(l.regs + APIC_LVT0, &lvt0, 4);
	memcpy(l.regs + APIC_LVT1, &lvt1, 4);
	if (ioctl(fd, KVM_SET_LAPIC, &l) < 0)
		return vs_err(err, errno, "vCPU %u: KVM_SET_LAPIC", id);
	return 0;
}

int cpu_init(int vcpu_fd, const struct kvm_cpuid2 *sup, unsigned id, unsigned ncpus, vs_err_t *err)
{
	if (set_cpuid(vcpu_fd, sup, id, ncpus, err) < 0 || set_msrs(vcpu_fd, id, err) < 0)
		return -1;
	set_xcr0(vcpu_fd, sup, id);
	struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80};
	if (ioctl(vcpu_fd, KVM_SET_FPU, &fpu) < 0)
		return vs_err(err, errno, "vCPU %u: KVM_SET_FPU", id);
	return set_lapic_lines(vcpu_fd, id, err);
}

static int write_gdt(struct guest_mem *m, vs_err_t *err)
{
	static const uint64_t gdt[] = {
	    0,			   /* null */
	    0x00cf9b000000ffffULL, /* 0x08: 32-bit code, flat 4 GiB, execute/read */
	    0x00af9b000000ffffULL, /* 0x10: 64-bit code */
	    0x00cf93000000ffffULL, /* 0x18: data, flat 4 GiB, read/write */
	    0x00008b0000000067ULL, /* 0x20: 32-bit TSS (busy), base 0 */
	};
	void *p = guest_mem_ptr(m, LAYOUT_GDT, sizeof(gdt));
	if (!p)
		return vs_err(err, 0, "no guest RAM for the GDT");
	memcpy(p, gdt, sizeof(gdt));
	return 0;
}

static void flat_segments(struct kvm_sregs *s, uint16_t cs_sel, bool long_mode)
{
	struct kvm_segment code = {.base = 0,
				   .limit = 0xffffffff,
				   .selector = cs_sel,
				   .type = 0xb,
				   .present = 1,
				   .dpl = 0,
				   .db = long_mode ? 0 : 1,
				   .s = 1,
				   .l = long_mode ? 1 : 0,
				   .g = 1};
	struct kvm_segment data = code;
	data.selector = GDT_DATA;
	data.type = 0x3;
	data.db = 1;
	data.l = 0;
	s->cs = code;
	s->ds = s->es = s->fs = s->gs = s->ss = data;
	s->tr = (struct kvm_segment){
	    .base = 0, .limit = 0x67, .selector = GDT_TSS, .type = 0xb, .present = 1, .s = 0};
	s->gdt.base = LAYOUT_GDT;
	s->gdt.limit = 5 * 8 - 1;
	s->idt.base = 0;
	s->idt.limit = 0;
}

int cpu_enter_pvh(int vcpu_fd, struct guest_mem *m, uint64_t entry, uint64_t start_info,
		  vs_err_t *err)
{
	if (write_gdt(m, err) < 0)
		return -1;
	struct kvm_sregs s;
	if (ioctl(vcpu_fd, KVM_GET_SREGS, &s) < 0)
		return vs_err(err, errno, "KVM_GET_SREGS");
	flat_segments(&s, GDT_CODE32, false);
	s.cr0 = CR0_PE | CR0_ET;
	s.cr4 = 0;
	s.efer = 0;
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &s) < 0)
		return vs_err(err, errno, "KVM_SET_SREGS");
	struct kvm_regs r = {.rip = entry, .rbx = start_info, .rflags = 2};
	if (ioctl(vcpu_fd, KVM_SET_REGS, &r) < 0)
		return vs_err(err, errno, "KVM_SET_REGS");
	return 0;
}

static int write_page_tables(struct guest_mem *m, vs_err_t *err)
{
	uint64_t *pml4 = guest_mem_ptr(m, LAYOUT_PML4, 4096);
	uint64_t *pdpt = guest_mem_ptr(m, LAYOUT_PDPT, 4096);
	uint64_t *pd = guest_mem_ptr(m, LAYOUT_PD, 4 * 4096);
	if (!pml4 || !pdpt || !pd)
		return vs_err(err, 0, "no guest RAM for the page tables");
	/* identity map of the first 4 GiB in 2 MiB pages: the kernel, boot_params,
	 * command line and initrd all lie there */
	pml4[0] = LAYOUT_PDPT | 0x3;
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (LAYOUT_PD + i * 4096) | 0x3;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | 0x83;
	return 0;
}

int cpu_enter_long64(int vcpu_fd, struct guest_mem *m, uint64_t entry, uint64_t boot_params,
		     vs_err_t *err)
{
	if (write_gdt(m, err) < 0 || write_page_tables(m, err) < 0)
		return -1;
	struct kvm_sregs s;
	if (ioctl(vcpu_fd, KVM_GET_SREGS, &s) < 0)
		return vs_err(err, errno, "KVM_GET_SREGS");
	flat_segments(&s, GDT_CODE64, true);
	s.cr3 = LAYOUT_PML4;
	s.cr4 = CR4_PAE;
	s.cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_PG;
	s.efer = EFER_LME | EFER_LMA;
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &s) < 0)
		return vs_err(err, errno, "KVM_SET_SREGS");
	struct kvm_regs r = {.rip = entry,
			     .rsi = boot_params,
			     .rsp = LAYOUT_BOOT_STACK,
			     .rbp = LAYOUT_BOOT_STACK,
			     .rflags = 2};
	if (ioctl(vcpu_fd, KVM_SET_REGS, &r) < 0)
		return vs_err(err, errno, "KVM_SET_REGS");
	return 0;
}
