/* A snapshot's CPUID section (untrusted: any bytes of a state file, under a good CRC)
 * against a host's table: the input's first byte splits the rest into the two tables of
 * whole kvm_cpuid_entry2. Checks, besides crashes and UB: a table compared with itself
 * passes; a refusal is one printable line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/snapshot/cpu_compat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one_line(const vs_err_t e)
{
	if (!e || !e->msg || !*e->msg)
		__builtin_trap();
	for (const char *c = e->msg; *c; c++)
		if ((unsigned char)*c < 0x20)
			__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const size_t esz = sizeof(struct kvm_cpuid_entry2);
	if (size < 1)
		return 0;
	size_t n = (size - 1) / esz, split = n ? data[0] % (n + 1) : 0;
	struct kvm_cpuid_entry2 *e = calloc(n ? n : 1, esz);
	if (!e)
		return 0;
	memcpy(e, data + 1, n * esz);
	bool model;
	vs_err_t err = NULL;
	if (cpu_compat_check(e, split, e + split, n - split, &model, &err) < 0)
		one_line(err);
	vs_err_free(&err);
	if (cpu_compat_check(e, n, e, n, &model, &err) != 0 || model)
		__builtin_trap();
	free(e);
	return 0;
}
