/* PUT /actions: InstanceStart (build the VM from the description and run it),
 * SendCtrlAltDel (the guest's keyboard) and FlushMetrics. */
#include <string.h>

#include "base/json.h"
#include "vmm/api/resources.h"

static int instance_start(struct api *a, vs_err_t *err)
{
	if (api_before_start(a, "InstanceStart", err) < 0)
		return -1;
	if (!json_object_get(a->doc, "boot-source"))
		return vs_err(err, 0,
			      "InstanceStart: no boot source: PUT /boot-source with "
			      "kernel_image_path first");
	struct vm_config c;
	vm_config_init(&c);
	int r = vm_config_from_json(&c, a->doc, err);
	if (r == 0)
		r = a->ctl.start(a->ctl.ctx, &c, err);
	vm_config_free(&c);
	if (r < 0)
		return vs_err_wrap(err, "InstanceStart");
	a->state = API_RUNNING;
	return 0;
}

int res_actions_put(struct api *a, const struct api_request *q, struct api_response *r,
		    vs_err_t *err)
{
	static const char *const keys[] = {"action_type", NULL};
	const char *type = NULL;
	if (vm_json_only(q->body, keys, err) < 0 ||
	    vjson_require(vjson_string(q->body, NULL, "action_type", &type, err), NULL,
			  "action_type", "a string", err) < 0)
		return -1;
	int rc;
	if (strcmp(type, "InstanceStart") == 0) {
		rc = instance_start(a, err);
	} else if (strcmp(type, "SendCtrlAltDel") == 0) {
		rc = api_after_start(a, "SendCtrlAltDel", err);
		if (rc == 0 && a->state == API_PAUSED)
			rc = vs_err(err, 0, "SendCtrlAltDel: the microVM is paused");
		if (rc == 0)
			rc = a->ctl.ctrl_alt_del(a->ctl.ctx, err);
	} else if (strcmp(type, "FlushMetrics") == 0) {
		rc = res_metrics_flush(a, err);
	} else {
		return vs_err(err, 0,
			      "action_type: `%.64s`: must be InstanceStart, SendCtrlAltDel or "
			      "FlushMetrics",
			      type);
	}
	if (rc < 0)
		return -1;
	api_ok_empty(r);
	return 0;
}
