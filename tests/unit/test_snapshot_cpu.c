/* A snapshot's CPUID against the host's (snapshot/cpu_compat.c), on made-up tables: the
 * same table passes; another vendor or family is refused naming both; a feature the host
 * lacks is refused by name; the guest's own bits (OSXSAVE) and another model pass. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "vmm/snapshot/cpu_compat.h"

/* family 0x17 model 0x31 stepping 0 (a Zen 2), xsave + avx, avx2, kvmclock */
static size_t table(struct kvm_cpuid_entry2 *e)
{
	memset(e, 0, 6 * sizeof(*e));
	e[0] = (struct kvm_cpuid_entry2){.function = 0, .eax = 0x10};
	memcpy(&e[0].ebx, "Auth", 4);
	memcpy(&e[0].edx, "enti", 4);
	memcpy(&e[0].ecx, "cAMD", 4);
	e[1] = (struct kvm_cpuid_entry2){.function = 1,
					 .eax = (0x8u << 20) | (0xfu << 8) | (0x3u << 16) |
						(0x1u << 4),
					 .ecx = (1u << 26) | (1u << 28) | (1u << 31),
					 .edx = (1u << 0) | (1u << 25) | (1u << 26)};
	e[2] = (struct kvm_cpuid_entry2){.function = 7, .index = 0, .ebx = 1u << 5};
	e[3] = (struct kvm_cpuid_entry2){.function = 7, .index = 1};
	e[4] = (struct kvm_cpuid_entry2){.function = 0xd, .index = 0, .eax = 0x7};
	e[5] = (struct kvm_cpuid_entry2){.function = 0x40000001, .eax = 1u << 3};
	return 6;
}

static int check(const struct kvm_cpuid_entry2 *s, const struct kvm_cpuid_entry2 *h, bool *model,
		 char *msg, size_t len)
{
	vs_err_t err = NULL;
	int r = cpu_compat_check(s, 6, h, 6, model, &err);
	snprintf(msg, len, "%s", err ? err->msg : "");
	vs_err_free(&err);
	return r;
}

Test(cpu_compat, the_same_cpu_passes)
{
	struct kvm_cpuid_entry2 s[6], h[6];
	table(s);
	table(h);
	bool model = true;
	char msg[512];
	cr_assert_eq(check(s, h, &model, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_not(model);
	/* the guest turned XSAVE on: OSXSAVE is its bit, not the CPU's */
	s[1].ecx |= 1u << 27;
	cr_assert_eq(check(s, h, &model, msg, sizeof(msg)), 0, "%s", msg);
	/* the host offers more than the snapshot used: fine */
	h[2].ebx |= 1u << 16;
	cr_assert_eq(check(s, h, &model, msg, sizeof(msg)), 0, "%s", msg);
}

Test(cpu_compat, another_model_of_the_family_passes_and_says_so)
{
	struct kvm_cpuid_entry2 s[6], h[6];
	table(s);
	table(h);
	h[1].eax = (h[1].eax & ~0xf0u) | (0x7u << 4);
	bool model = false;
	char msg[512];
	cr_assert_eq(check(s, h, &model, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert(model);
}

Test(cpu_compat, another_vendor_or_family_is_refused_naming_both)
{
	struct kvm_cpuid_entry2 s[6], h[6];
	table(s);
	table(h);
	memcpy(&h[0].ebx, "Genu", 4);
	memcpy(&h[0].edx, "ineI", 4);
	memcpy(&h[0].ecx, "ntel", 4);
	bool model;
	char msg[512];
	cr_assert_eq(check(s, h, &model, msg, sizeof(msg)), -1);
	cr_assert(strstr(msg, "AuthenticAMD family 0x17 model 0x31") && strstr(msg, "GenuineIntel"),
		  "%s", msg);
	table(h);
	h[1].eax = (h[1].eax & ~(0xffu << 20)) | (0xau << 20); /* family 0x19 */
	cr_assert_eq(check(s, h, &model, msg, sizeof(msg)), -1);
	cr_assert(strstr(msg, "family 0x19") && strstr(msg, "family"), "%s", msg);
}

Test(cpu_compat, features_the_host_lacks_are_named)
{
	struct kvm_cpuid_entry2 s[6], h[6];
	table(s);
	table(h);
	s[2].ebx |= 1u << 16 | 1u << 30; /* avx512f, avx512bw */
	s[2].edx |= 1u << 2;		 /* unnamed here */
	s[5].eax |= 1u << 15;		 /* a KVM feature */
	bool model;
	char msg[512];
	cr_assert_eq(check(s, h, &model, msg, sizeof(msg)), -1);
	cr_assert(strstr(msg, "avx512f, avx512bw"), "%s", msg);
	cr_assert(strstr(msg, "CPUID 0x7.0 EDX bit 2"), "%s", msg);
	cr_assert(strstr(msg, "CPUID 0x40000001.0 EAX bit 15"), "%s", msg);
	cr_assert_null(strchr(msg, '\n'), "%s", msg);
	/* a whole leaf the host lacks offers nothing */
	table(s);
	s[3].eax = 1u << 5; /* avx512_bf16 */
	h[3].function = 0x12345;
	cr_assert_eq(check(s, h, &model, msg, sizeof(msg)), -1);
	cr_assert(strstr(msg, "avx512_bf16"), "%s", msg);
}

Test(cpu_compat, many_missing_features_stay_one_line)
{
	struct kvm_cpuid_entry2 s[6], h[6];
	table(s);
	table(h);
	s[2].ebx = s[2].ecx = s[2].edx = 0xffffffffu;
	bool model;
	char msg[512];
	cr_assert_eq(check(s, h, &model, msg, sizeof(msg)), -1);
	cr_assert(strstr(msg, "more"), "%s", msg);
}
