/* GET /, GET /version, GET /vm/config: what the instance is and how it is configured. */
#include "vmm/api/resources.h"

static const char *state_name(enum api_state s)
{
	switch (s) {
	case API_RUNNING:
		return "Running";
	case API_PAUSED:
		return "Paused";
	default:
		return "Not started";
	}
}

int res_instance_get(struct api *a, const struct api_request *q, struct api_response *r,
		     vs_err_t *err)
{
	(void)q;
	return api_ok_json(r,
			   json_pack("{s:s, s:s, s:s, s:s}", "app_name", "vessel", "id", a->id,
				     "state", state_name(a->state), "vmm_version", VESSEL_VERSION),
			   err);
}

int res_version_get(struct api *a, const struct api_request *q, struct api_response *r,
		    vs_err_t *err)
{
	(void)a;
	(void)q;
	return api_ok_json(r, json_pack("{s:s}", "firecracker_version", VESSEL_VERSION), err);
}

/* The description as PUT, with machine-config's defaults and the device lists always
 * there (empty), as Firecracker shows them. */
int res_vm_config_get(struct api *a, const struct api_request *q, struct api_response *r,
		      vs_err_t *err)
{
	(void)q;
	json_t *v = json_deep_copy(a->doc);
	if (!v)
		return api_ok_json(r, NULL, err);
	json_object_set_new(v, "machine-config", api_machine_config(a));
	if (!json_object_get(v, "drives"))
		json_object_set_new(v, "drives", json_array());
	if (!json_object_get(v, "network-interfaces"))
		json_object_set_new(v, "network-interfaces", json_array());
	if (a->logger)
		json_object_set(v, "logger", a->logger);
	if (a->metrics)
		json_object_set(v, "metrics", a->metrics);
	return api_ok_json(r, v, err);
}
