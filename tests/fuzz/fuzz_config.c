/* config.json is written by whoever calls the runtime: any bytes must give a spec or
 * a clear error, never a crash, leak or hang. */
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "oci/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (!j)
		return 0;
	struct spec *s = NULL;
	vs_err_t err = NULL;
	if (spec_parse(j, "/bundle", &s, &err) == 0)
		spec_free(s);
	vs_err_free(&err);
	json_decref(j);
	return 0;
}
