/* Arbitrary bytes as process.capabilities of config.json. Nothing is applied: parsing is
 * what meets untrusted input. Found: crashes, leaks, UB; and a parse that accepts sets the
 * kernel would refuse (checked below). */
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "base/error.h"
#include "oci/caps.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (!j)
		return 0;
	struct caps_spec c;
	vs_err_t err = NULL;
	if (caps_parse(j, "process.capabilities", &c, &err) == 0) {
		uint64_t kernel =
		    caps_last_cap() >= 63 ? ~0ULL : (1ULL << (caps_last_cap() + 1)) - 1;
		uint64_t all = c.bounding | c.effective | c.permitted | c.inheritable | c.ambient;
		if ((c.effective & ~c.permitted) || (c.inheritable & ~c.bounding) ||
		    (c.ambient & ~(c.permitted & c.inheritable)) || (all & ~kernel))
			__builtin_trap();
	}
	vs_err_free(&err);
	json_decref(j);
	return 0;
}
