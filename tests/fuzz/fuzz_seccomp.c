/* Arbitrary bytes as the linux.seccomp object of config.json: parse, and compile whatever
 * parses (libseccomp sees every combination validation lets through). Nothing is
 * installed. Parse errors are expected; crashes, leaks, hangs and UB are the findings. */
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "base/error.h"
#include "oci/seccomp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (!j)
		return 0;
	struct seccomp_spec *s = NULL;
	vs_err_t err = NULL;
	if (seccomp_spec_parse(j, "linux.seccomp", &s, &err) == 0 && s) {
		struct seccomp_prog *p = NULL;
		if (seccomp_compile(s, &p, &err) == 0 && seccomp_prog_len(p) == 0)
			__builtin_trap(); /* a compiled program always has instructions */
		seccomp_prog_free(p);
	}
	vs_err_free(&err);
	seccomp_spec_free(s);
	json_decref(j);
	return 0;
}
