/* Arbitrary bytes as a `vm run --seccomp-filter` file: parse only (nothing is loaded).
 * Parse errors are expected; crashes, leaks, hangs and UB are the findings. */
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "vmm/seccomp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vmm_seccomp_lists l;
	vs_err_t err = NULL;
	if (vmm_seccomp_parse((const char *)data, size, &l, &err) == 0)
		vmm_seccomp_lists_free(&l);
	vs_err_free(&err);
	return 0;
}
