/* PATCH /vm: {"state": "Paused"} parks every vCPU and quiesces the devices; "Resumed" lets
 * them go on. The controller does both; asking for the state the VM is in is a no-op. */
#include <string.h>

#include "base/json.h"
#include "vmm/api/resources.h"

int res_vm_patch(struct api *a, const struct api_request *q, struct api_response *r, vs_err_t *err)
{
	static const char *const keys[] = {"state", NULL};
	const char *state = NULL;
	if (vm_json_only(q->body, keys, err) < 0 ||
	    vjson_require(vjson_string(q->body, NULL, "state", &state, err), NULL, "state",
			  "a string", err) < 0)
		return -1;
	bool pause = strcmp(state, "Paused") == 0;
	if (!pause && strcmp(state, "Resumed") != 0)
		return vs_err(err, 0, "state: `%.64s`: must be Paused or Resumed", state);
	if (api_after_start(a, pause ? "PATCH /vm Paused" : "PATCH /vm Resumed", err) < 0)
		return -1;
	if (pause && a->state == API_RUNNING) {
		if (a->ctl.pause(a->ctl.ctx, err) < 0)
			return -1;
		a->state = API_PAUSED;
	} else if (!pause && a->state == API_PAUSED) {
		if (a->ctl.resume(a->ctl.ctx, err) < 0)
			return -1;
		a->state = API_RUNNING;
	}
	api_ok_empty(r);
	return 0;
}
