/* PUT /snapshot/create (a paused VM to a state file and a memory file) and PUT
 * /snapshot/load (a fresh instance becomes the snapshot's VM), with Firecracker's bodies.
 * The body is checked whole here; the controller does the work. */
#include <string.h>

#include "base/json.h"
#include "base/util.h"
#include "vmm/api/resources.h"

#define MAX_NET_OVERRIDES 16

static int path_member(json_t *obj, const char *at, const char *key, const char **out,
		       vs_err_t *err)
{
	int rc = vjson_string(obj, at, key, out, err);
	if (rc == 1 && !**out)
		return vs_err(err, 0, "%s%s%s: must not be empty", at ? at : "", at ? "." : "",
			      key);
	return rc;
}

int res_snapshot_create(struct api *a, const struct api_request *q, struct api_response *r,
			vs_err_t *err)
{
	/* version: Firecracker's old clients send the format to write; there is one */
	static const char *const keys[] = {"snapshot_type", "snapshot_path", "mem_file_path",
					   "version", NULL};
	struct api_snapshot_create o = {0};
	const char *type = NULL, *version = NULL;
	if (vm_json_only(q->body, keys, err) < 0 ||
	    vjson_require(path_member(q->body, NULL, "snapshot_path", &o.state_path, err), NULL,
			  "snapshot_path", "a string", err) < 0 ||
	    vjson_require(path_member(q->body, NULL, "mem_file_path", &o.mem_path, err), NULL,
			  "mem_file_path", "a string", err) < 0 ||
	    vjson_string(q->body, NULL, "snapshot_type", &type, err) < 0 ||
	    vjson_string(q->body, NULL, "version", &version, err) < 0)
		return -1;
	if (type && strcmp(type, "Full") != 0 && strcmp(type, "Diff") != 0)
		return vs_err(err, 0, "snapshot_type: `%.64s`: must be Full or Diff", type);
	o.diff = type && strcmp(type, "Diff") == 0;
	if (strcmp(o.state_path, o.mem_path) == 0)
		return vs_err(err, 0, "snapshot_path and mem_file_path: must be different files");
	if (a->state != API_PAUSED)
		return vs_err(err, 0,
			      "PUT /snapshot/create: the microVM must be paused first (PATCH /vm "
			      "Paused); it is %s",
			      a->state == API_RUNNING ? "running" : "not started");
	cleanup_free char *config = json_dumps(a->doc, JSON_COMPACT | JSON_SORT_KEYS);
	if (!config)
		return vs_err(err, 0, "PUT /snapshot/create: the description as JSON");
	if (a->ctl.snapshot_create(a->ctl.ctx, &o, config, err) < 0)
		return vs_err_wrap(err, "PUT /snapshot/create");
	api_ok_empty(r);
	return 0;
}

/* network_overrides: [{iface_id, host_dev_name}], checked here, applied by the controller
 * to the snapshot's description (an iface_id it lacks is refused there). */
static int net_overrides(json_t *body, struct api_net_override *out, size_t *n, vs_err_t *err)
{
	json_t *arr = NULL;
	int rc = vjson_array(body, NULL, "network_overrides", &arr, err);
	if (rc <= 0)
		return rc;
	if (json_array_size(arr) > MAX_NET_OVERRIDES)
		return vs_err(err, 0, "network_overrides: at most %d", MAX_NET_OVERRIDES);
	static const char *const keys[] = {"iface_id", "host_dev_name", NULL};
	size_t i;
	json_t *o;
	json_array_foreach(arr, i, o)
	{
		cleanup_free char *at = vjson_index("network_overrides", i);
		if (!json_is_object(o))
			return vs_err(err, 0, "%s: must be an object", at);
		if (vm_json_only(o, keys, err) < 0)
			return vs_err_wrap(err, "%s", at);
		if (vjson_require(path_member(o, at, "iface_id", &out[i].iface_id, err), at,
				  "iface_id", "a string", err) < 0 ||
		    vjson_require(path_member(o, at, "host_dev_name", &out[i].host_dev_name, err),
				  at, "host_dev_name", "a string", err) < 0)
			return -1;
		for (size_t k = 0; k < i; k++)
			if (strcmp(out[k].iface_id, out[i].iface_id) == 0)
				return vs_err(err, 0, "%s.iface_id: `%.64s` twice", at,
					      out[i].iface_id);
	}
	*n = json_array_size(arr);
	return 1;
}

static int mem_backend(json_t *body, struct api_snapshot_load *o, vs_err_t *err)
{
	json_t *b = NULL;
	const char *legacy = NULL, *type = NULL;
	int has_b = vjson_object(body, NULL, "mem_backend", &b, err);
	int has_l = has_b < 0 ? -1 : path_member(body, NULL, "mem_file_path", &legacy, err);
	if (has_b < 0 || has_l < 0)
		return -1;
	if (has_b && has_l)
		return vs_err(err, 0, "mem_backend and mem_file_path: give one, not both");
	if (has_l) {
		o->mem_path = legacy;
		return 0;
	}
	if (!has_b)
		return vs_err(err, 0, "mem_backend: is required (or the older mem_file_path)");
	static const char *const keys[] = {"backend_path", "backend_type", NULL};
	if (vm_json_only(b, keys, err) < 0)
		return vs_err_wrap(err, "mem_backend");
	if (vjson_require(path_member(b, "mem_backend", "backend_path", &o->mem_path, err),
			  "mem_backend", "backend_path", "a string", err) < 0 ||
	    vjson_require(vjson_string(b, "mem_backend", "backend_type", &type, err), "mem_backend",
			  "backend_type", "a string", err) < 0)
		return -1;
	if (strcmp(type, "Uffd") == 0)
		return vs_err(err, 0, "mem_backend.backend_type: Uffd is not supported (File is)");
	if (strcmp(type, "File") != 0)
		return vs_err(err, 0, "mem_backend.backend_type: `%.64s`: must be File", type);
	return 0;
}

int res_snapshot_load(struct api *a, const struct api_request *q, struct api_response *r,
		      vs_err_t *err)
{
	static const char *const keys[] = {
	    "snapshot_path",	 "mem_backend", "mem_file_path",     "enable_diff_snapshots",
	    "track_dirty_pages", "resume_vm",	"network_overrides", NULL};
	struct api_net_override net[MAX_NET_OVERRIDES];
	struct api_snapshot_load o = {.net = net};
	bool diff = false, dirty = false;
	if (vm_json_only(q->body, keys, err) < 0 ||
	    vjson_require(path_member(q->body, NULL, "snapshot_path", &o.state_path, err), NULL,
			  "snapshot_path", "a string", err) < 0 ||
	    mem_backend(q->body, &o, err) < 0 ||
	    vjson_bool(q->body, NULL, "enable_diff_snapshots", &diff, err) < 0 ||
	    vjson_bool(q->body, NULL, "track_dirty_pages", &dirty, err) < 0 ||
	    vjson_bool(q->body, NULL, "resume_vm", &o.resume, err) < 0 ||
	    net_overrides(q->body, net, &o.nnet, err) < 0)
		return -1;
	o.track_dirty = diff || dirty;
	if (api_before_start(a, "PUT /snapshot/load", err) < 0)
		return -1;
	/* Firecracker's rule: a snapshot's VM is the snapshot's config, nothing added */
	if (json_object_size(a->doc) > 0)
		return vs_err(err, 0,
			      "PUT /snapshot/load: the microVM is configured already (boot source, "
			      "machine config or devices); a snapshot loads only into a fresh one");
	json_t *doc = NULL;
	if (a->ctl.snapshot_load(a->ctl.ctx, &o, &doc, err) < 0)
		return vs_err_wrap(err, "PUT /snapshot/load");
	json_decref(a->doc);
	a->doc = doc;
	a->state = o.resume ? API_RUNNING : API_PAUSED;
	api_ok_empty(r);
	return 0;
}
