/* GET|PUT|PATCH /machine-config: vCPUs, memory, huge pages. PUT and PATCH pre-boot only;
 * PUT sets the whole object (absent optional members take their defaults), PATCH only
 * the members it names. */
#include <errno.h>

#include "vmm/api/resources.h"

int res_machine_config_get(struct api *a, const struct api_request *q, struct api_response *r,
			   vs_err_t *err)
{
	(void)q;
	return api_ok_json(r, api_machine_config(a), err);
}

static int set(struct api *a, json_t *mc, struct api_response *r, vs_err_t *err)
{
	json_t *next = json_deep_copy(a->doc);
	if (!next) {
		json_decref(mc);
		return vs_err(err, ENOMEM, "machine-config");
	}
	json_object_set_new(next, "machine-config", mc);
	if (api_commit(a, next, err) < 0)
		return -1;
	api_ok_empty(r);
	return 0;
}

int res_machine_config_put(struct api *a, const struct api_request *q, struct api_response *r,
			   vs_err_t *err)
{
	if (api_before_start(a, "PUT /machine-config", err) < 0)
		return -1;
	return set(a, json_incref(q->body), r, err);
}

int res_machine_config_patch(struct api *a, const struct api_request *q, struct api_response *r,
			     vs_err_t *err)
{
	if (api_before_start(a, "PATCH /machine-config", err) < 0)
		return -1;
	if (json_object_size(q->body) == 0)
		return vs_err(err, 0, "PATCH /machine-config: the body names no member to change");
	json_t *mc = api_machine_config(a);
	if (!mc)
		return vs_err(err, ENOMEM, "machine-config");
	json_object_update(mc, q->body);
	return set(a, mc, r, err);
}
