/* state.json is ours, but a crash, a full disk or a hand edit may leave any bytes there,
 * and delete acts on what it names: any input must give a record or a clear error,
 * never a crash, leak or hang. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/error.h"
#include "sandbox/sandbox.h"
#include "oci/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (!j)
		return 0;
	struct container_state st;
	memset(&st, 0, sizeof(st));
	st.dir_fd = -1;
	st.id = strdup("fuzz");
	vs_err_t err = NULL;
	if (state_parse(j, &st, &err) == 0) {
		json_decref(state_to_oci_json(&st, STATUS_STOPPED));
		struct cgroup *cg = NULL;
		if (st.cgroup && cgroup_from_json(st.cgroup, &cg, &err) == 0)
			cgroup_free(cg);
	}
	vs_err_free(&err);
	state_release(&st);
	json_decref(j);
	return 0;
}
