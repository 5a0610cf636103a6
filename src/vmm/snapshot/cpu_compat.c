#include "vmm/snapshot/cpu_compat.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum reg { EAX, EBX, ECX, EDX };
static const char reg_name[][4] = {"EAX", "EBX", "ECX", "EDX"};

/* The registers whose bits are features a guest may use; `dynamic` are bits that follow
 * the guest's own control registers rather than the CPU. */
static const struct feature_reg {
	uint32_t leaf, index;
	enum reg reg;
	uint32_t dynamic;
} feature_regs[] = {
    {0x1, 0, ECX, 1u << 27 /* OSXSAVE */},
    {0x1, 0, EDX, 0},
    {0x7, 0, EBX, 0},
    {0x7, 0, ECX, 1u << 4 /* OSPKE */},
    {0x7, 0, EDX, 0},
    {0x7, 1, EAX, 0},
    {0xd, 0, EAX, 0}, /* XSAVE state components (XCR0's low half) */
    {0xd, 0, EDX, 0},
    {0xd, 1, EAX, 0}, /* XSAVEOPT, XSAVEC, XGETBV1, XSAVES */
    {0x80000001, 0, ECX, 0},
    {0x80000001, 0, EDX, 0},
    {0x80000007, 0, EDX, 0},
    {0x80000008, 0, EBX, 0},
    {0x40000001, 0, EAX, 0}, /* KVM's paravirtual features */
};

/* Names for the bits a message is likely to show (Linux's /proc/cpuinfo spelling);
 * others are named by leaf, register and bit. */
static const struct feature_name {
	uint32_t leaf, index;
	enum reg reg;
	uint8_t bit;
	const char *name;
} names[] = {
    {0x1, 0, ECX, 0, "sse3"},
    {0x1, 0, ECX, 1, "pclmulqdq"},
    {0x1, 0, ECX, 9, "ssse3"},
    {0x1, 0, ECX, 12, "fma"},
    {0x1, 0, ECX, 13, "cx16"},
    {0x1, 0, ECX, 19, "sse4_1"},
    {0x1, 0, ECX, 20, "sse4_2"},
    {0x1, 0, ECX, 21, "x2apic"},
    {0x1, 0, ECX, 22, "movbe"},
    {0x1, 0, ECX, 23, "popcnt"},
    {0x1, 0, ECX, 24, "tsc_deadline_timer"},
    {0x1, 0, ECX, 25, "aes"},
    {0x1, 0, ECX, 26, "xsave"},
    {0x1, 0, ECX, 28, "avx"},
    {0x1, 0, ECX, 29, "f16c"},
    {0x1, 0, ECX, 30, "rdrand"},
    {0x1, 0, EDX, 0, "fpu"},
    {0x1, 0, EDX, 4, "tsc"},
    {0x1, 0, EDX, 5, "msr"},
    {0x1, 0, EDX, 6, "pae"},
    {0x1, 0, EDX, 8, "cx8"},
    {0x1, 0, EDX, 9, "apic"},
    {0x1, 0, EDX, 15, "cmov"},
    {0x1, 0, EDX, 19, "clflush"},
    {0x1, 0, EDX, 23, "mmx"},
    {0x1, 0, EDX, 24, "fxsr"},
    {0x1, 0, EDX, 25, "sse"},
    {0x1, 0, EDX, 26, "sse2"},
    {0x1, 0, EDX, 28, "ht"},
    {0x7, 0, EBX, 0, "fsgsbase"},
    {0x7, 0, EBX, 3, "bmi1"},
    {0x7, 0, EBX, 4, "hle"},
    {0x7, 0, EBX, 5, "avx2"},
    {0x7, 0, EBX, 7, "smep"},
    {0x7, 0, EBX, 8, "bmi2"},
    {0x7, 0, EBX, 9, "erms"},
    {0x7, 0, EBX, 10, "invpcid"},
    {0x7, 0, EBX, 11, "rtm"},
    {0x7, 0, EBX, 16, "avx512f"},
    {0x7, 0, EBX, 17, "avx512dq"},
    {0x7, 0, EBX, 18, "rdseed"},
    {0x7, 0, EBX, 19, "adx"},
    {0x7, 0, EBX, 20, "smap"},
    {0x7, 0, EBX, 21, "avx512ifma"},
    {0x7, 0, EBX, 23, "clflushopt"},
    {0x7, 0, EBX, 24, "clwb"},
    {0x7, 0, EBX, 26, "avx512pf"},
    {0x7, 0, EBX, 27, "avx512er"},
    {0x7, 0, EBX, 28, "avx512cd"},
    {0x7, 0, EBX, 29, "sha_ni"},
    {0x7, 0, EBX, 30, "avx512bw"},
    {0x7, 0, EBX, 31, "avx512vl"},
    {0x7, 0, ECX, 1, "avx512vbmi"},
    {0x7, 0, ECX, 2, "umip"},
    {0x7, 0, ECX, 3, "pku"},
    {0x7, 0, ECX, 5, "waitpkg"},
    {0x7, 0, ECX, 6, "avx512_vbmi2"},
    {0x7, 0, ECX, 8, "gfni"},
    {0x7, 0, ECX, 9, "vaes"},
    {0x7, 0, ECX, 10, "vpclmulqdq"},
    {0x7, 0, ECX, 11, "avx512_vnni"},
    {0x7, 0, ECX, 12, "avx512_bitalg"},
    {0x7, 0, ECX, 14, "avx512_vpopcntdq"},
    {0x7, 0, ECX, 16, "la57"},
    {0x7, 0, ECX, 22, "rdpid"},
    {0x7, 0, EDX, 4, "fsrm"},
    {0x7, 0, EDX, 8, "avx512_vp2intersect"},
    {0x7, 0, EDX, 14, "serialize"},
    {0x7, 0, EDX, 22, "amx_bf16"},
    {0x7, 0, EDX, 23, "avx512_fp16"},
    {0x7, 0, EDX, 24, "amx_tile"},
    {0x7, 0, EDX, 25, "amx_int8"},
    {0x7, 1, EAX, 4, "avx_vnni"},
    {0x7, 1, EAX, 5, "avx512_bf16"},
    {0xd, 0, EAX, 2, "xstate avx"},
    {0xd, 0, EAX, 5, "xstate opmask"},
    {0xd, 0, EAX, 6, "xstate zmm_hi256"},
    {0xd, 0, EAX, 7, "xstate hi16_zmm"},
    {0xd, 0, EAX, 9, "xstate pkru"},
    {0xd, 0, EAX, 17, "xstate amx_tilecfg"},
    {0xd, 0, EAX, 18, "xstate amx_tiledata"},
    {0xd, 1, EAX, 0, "xsaveopt"},
    {0xd, 1, EAX, 1, "xsavec"},
    {0xd, 1, EAX, 2, "xgetbv1"},
    {0xd, 1, EAX, 3, "xsaves"},
    {0x80000001, 0, ECX, 0, "lahf_lm"},
    {0x80000001, 0, ECX, 5, "abm"},
    {0x80000001, 0, ECX, 6, "sse4a"},
    {0x80000001, 0, ECX, 8, "3dnowprefetch"},
    {0x80000001, 0, ECX, 16, "fma4"},
    {0x80000001, 0, EDX, 11, "syscall"},
    {0x80000001, 0, EDX, 20, "nx"},
    {0x80000001, 0, EDX, 26, "pdpe1gb"},
    {0x80000001, 0, EDX, 27, "rdtscp"},
    {0x80000001, 0, EDX, 29, "lm"},
    {0x80000007, 0, EDX, 8, "constant_tsc"},
    {0x40000001, 0, EAX, 3, "kvmclock"},
};

/* Leaves 7 and 0xD have subleaves; the others are looked up by leaf alone. */
static const struct kvm_cpuid_entry2 *find(const struct kvm_cpuid_entry2 *e, size_t n,
					   uint32_t leaf, uint32_t index)
{
	bool indexed = leaf == 0x7 || leaf == 0xd;
	for (size_t i = 0; i < n; i++)
		if (e[i].function == leaf && (!indexed || e[i].index == index))
			return &e[i];
	return NULL;
}

static uint32_t reg_of(const struct kvm_cpuid_entry2 *e, enum reg r)
{
	if (!e)
		return 0; /* a leaf the table lacks offers nothing */
	switch (r) {
	case EAX:
		return e->eax;
	case EBX:
		return e->ebx;
	case ECX:
		return e->ecx;
	default:
		return e->edx;
	}
}

static void vendor(const struct kvm_cpuid_entry2 *e, size_t n, char out[13])
{
	const struct kvm_cpuid_entry2 *l0 = find(e, n, 0, 0);
	memset(out, 0, 13);
	if (!l0)
		return;
	memcpy(out, &l0->ebx, 4);
	memcpy(out + 4, &l0->edx, 4);
	memcpy(out + 8, &l0->ecx, 4);
	for (int i = 0; i < 12; i++) /* from a file: keep the message printable */
		if (out[i] && (out[i] < 0x20 || out[i] > 0x7e))
			out[i] = '?';
}

struct signature {
	unsigned family, model, stepping;
};

static struct signature signature(const struct kvm_cpuid_entry2 *e, size_t n)
{
	uint32_t a = reg_of(find(e, n, 1, 0), EAX);
	struct signature s = {(a >> 8) & 0xf, (a >> 4) & 0xf, a & 0xf};
	if (s.family == 0xf)
		s.family += (a >> 20) & 0xff;
	if (s.family == 0x6 || s.family >= 0xf)
		s.model |= ((a >> 16) & 0xf) << 4;
	return s;
}

void cpu_compat_describe(const struct kvm_cpuid_entry2 *e, size_t n, char *out, size_t len)
{
	char v[13];
	vendor(e, n, v);
	struct signature s = signature(e, n);
	snprintf(out, len, "%s family 0x%x model 0x%x stepping %u", v[0] ? v : "(no vendor)",
		 s.family, s.model, s.stepping);
}

static void name_bit(const struct feature_reg *f, unsigned bit, char *out, size_t len)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].leaf == f->leaf && names[i].index == f->index &&
		    names[i].reg == f->reg && names[i].bit == bit) {
			snprintf(out, len, "%s", names[i].name);
			return;
		}
	snprintf(out, len, "CPUID 0x%x.%u %s bit %u", f->leaf, f->index, reg_name[f->reg], bit);
}

#define NAMED_MAX 8

int cpu_compat_check(const struct kvm_cpuid_entry2 *saved, size_t n,
		     const struct kvm_cpuid_entry2 *host, size_t m, bool *model_differs,
		     vs_err_t *err)
{
	char theirs[96], ours[96], vt[13], vo[13];
	cpu_compat_describe(saved, n, theirs, sizeof(theirs));
	cpu_compat_describe(host, m, ours, sizeof(ours));
	vendor(saved, n, vt);
	vendor(host, m, vo);
	*model_differs = false;
	if (strcmp(vt, vo) != 0)
		return vs_err(err, 0,
			      "the snapshot's CPU is %s, this host's is %s: it cannot run here",
			      theirs, ours);
	struct signature st = signature(saved, n), so = signature(host, m);
	if (st.family != so.family)
		return vs_err(err, 0,
			      "the snapshot's CPU is %s, this host's is %s: another CPU family "
			      "cannot run it",
			      theirs, ours);
	*model_differs = st.model != so.model || st.stepping != so.stepping;

	char list[512] = "";
	size_t len = 0;
	unsigned missing = 0;
	for (size_t i = 0; i < sizeof(feature_regs) / sizeof(feature_regs[0]); i++) {
		const struct feature_reg *f = &feature_regs[i];
		uint32_t lack = reg_of(find(saved, n, f->leaf, f->index), f->reg) &
				~reg_of(find(host, m, f->leaf, f->index), f->reg) & ~f->dynamic;
		for (unsigned bit = 0; bit < 32; bit++) {
			if (!(lack & (1u << bit)))
				continue;
			if (missing++ >= NAMED_MAX)
				continue;
			char one[64];
			name_bit(f, bit, one, sizeof(one));
			len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
						len ? ", " : "", one);
			if (len >= sizeof(list))
				len = sizeof(list) - 1;
		}
	}
	if (!missing)
		return 0;
	char more[32] = "";
	if (missing > NAMED_MAX)
		snprintf(more, sizeof(more), " and %u more", missing - NAMED_MAX);
	return vs_err(err, 0,
		      "the snapshot's CPU (%s) has %s%s, which this host's KVM does not offer "
		      "(%s): it cannot run here",
		      theirs, list, more, ours);
}
