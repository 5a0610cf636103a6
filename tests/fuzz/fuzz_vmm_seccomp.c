/* Arbitrary bytes as a `vm run --seccomp-filter` file: parse, then hand every rule to
 * libseccomp as vmm_seccomp_apply would (nothing is loaded). Parse errors are expected; a
 * file that parses but that libseccomp refuses would stop the VM at a thread's start, so
 * it aborts here. Crashes, leaks, hangs and UB are the other findings. */
#include <seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/error.h"
#include "vmm/seccomp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vmm_seccomp_lists l;
	vs_err_t err = NULL;
	if (vmm_seccomp_parse((const char *)data, size, &l, &err) == 0) {
		for (int k = 0; k < VMM_NTHREADS; k++) {
			scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
			if (!ctx)
				abort();
			for (size_t i = 0; i < l.n[k]; i++) {
				const struct vmm_seccomp_rule *r = &l.rules[k][i];
				if (r->nargs > VMM_SECCOMP_MAX_ARGS ||
				    seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, r->nr, r->nargs,
							   r->args) < 0)
					abort();
			}
			seccomp_release(ctx);
		}
		vmm_seccomp_lists_free(&l);
	}
	vs_err_free(&err);
	return 0;
}
