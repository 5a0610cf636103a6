/* The API's instance: its state and description, and one request -> one response. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/json.h"
#include "base/log.h"
#include "vmm/api/resources.h"

struct api *api_new(const char *id, const struct api_controller *ctl, vs_err_t *err)
{
	struct api *a = calloc(1, sizeof(*a));
	if (!a) {
		vs_err(err, ENOMEM, "API");
		return NULL;
	}
	a->ctl = *ctl;
	a->metrics_fd = -1;
	a->id = strdup(id ? id : "anonymous-instance");
	a->doc = json_object();
	if (!a->id || !a->doc) {
		api_free(a);
		vs_err(err, ENOMEM, "API");
		return NULL;
	}
	return a;
}

void api_free(struct api *a)
{
	if (!a)
		return;
	free(a->id);
	json_decref(a->doc);
	json_decref(a->logger);
	json_decref(a->metrics);
	if (a->metrics_fd >= 0)
		close(a->metrics_fd);
	free(a);
}

enum api_state api_state(const struct api *a)
{
	return a->state;
}

int api_ok_json(struct api_response *r, json_t *v, vs_err_t *err)
{
	char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
	json_decref(v);
	if (!s)
		return vs_err(err, ENOMEM, "response");
	r->status = 200;
	r->body = s;
	return 0;
}

void api_ok_empty(struct api_response *r)
{
	r->status = 204;
	r->body = NULL;
}

int api_before_start(const struct api *a, const char *what, vs_err_t *err)
{
	if (a->state == API_NOT_STARTED)
		return 0;
	return vs_err(err, 0,
		      "%s: the microVM is started already; this is allowed only before "
		      "InstanceStart",
		      what);
}

int api_after_start(const struct api *a, const char *what, vs_err_t *err)
{
	if (a->state != API_NOT_STARTED)
		return 0;
	return vs_err(err, 0, "%s: the microVM is not started yet (PUT /actions InstanceStart)",
		      what);
}

int api_check(json_t *doc, vs_err_t *err)
{
	struct vm_config c;
	vm_config_init(&c);
	int r = vm_config_from_json_partial(&c, doc, err);
	vm_config_free(&c);
	return r;
}

int api_commit(struct api *a, json_t *next, vs_err_t *err)
{
	int r = api_check(next, err);
	if (r < 0) {
		json_decref(next);
		return -1;
	}
	json_decref(a->doc);
	a->doc = next;
	return 0;
}

json_t *api_machine_config(const struct api *a)
{
	json_t *m = json_pack("{s:i, s:i, s:b, s:b, s:s}", "vcpu_count", 1, "mem_size_mib",
			      (int)(VM_DEFAULT_MEMORY >> 20), "smt", 0, "track_dirty_pages", 0,
			      "huge_pages", "None");
	json_t *set = json_object_get(a->doc, "machine-config");
	if (m && set)
		json_object_update(m, set);
	return m;
}

/* The body as a JSON object, or -1 naming what is wrong with it. */
static json_t *parse_body(const char *body, size_t len, vs_err_t *err)
{
	if (!body || len == 0) {
		vs_err(err, 0, "the request needs a JSON body");
		return NULL;
	}
	json_error_t je;
	json_t *v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!v) {
		vs_err(err, 0, "request body: not valid JSON (line %d, column %d: %s)", je.line,
		       je.column, je.text);
		return NULL;
	}
	if (!json_is_object(v)) {
		json_decref(v);
		vs_err(err, 0, "request body: must be a JSON object");
		return NULL;
	}
	return v;
}

static void fault(struct api_response *r, const char *msg)
{
	json_t *v = json_pack("{s:s}", "fault_message", msg);
	r->status = 400;
	r->body = v ? json_dumps(v, JSON_COMPACT) : NULL;
	json_decref(v);
}

void api_handle(struct api *a, const char *method, const char *path, const char *body, size_t len,
		struct api_response *r)
{
	*r = (struct api_response){0};
	a->requests++;
	vs_err_t err = NULL;
	struct api_request q = {.method = method, .path = path};
	const struct api_route *route = NULL;
	int rc = api_route(method, path, &route, &q, &err);
	if (rc == 0 && route->body) {
		q.body = parse_body(body, len, &err);
		rc = q.body ? 0 : -1;
	}
	if (rc == 0)
		rc = route->fn(a, &q, r, &err);
	json_decref(q.body);
	if (rc < 0) {
		a->faults++;
		free(r->body);
		fault(r, err ? err->msg : "internal error");
		vs_debug("API %s %s: 400 %s", method, path, err ? err->msg : "");
		vs_err_free(&err);
	}
}

int api_boot_config_file(struct api *a, const char *path, vs_err_t *err)
{
	json_t *doc = vjson_load_file(path, 1u << 20, err);
	if (!doc)
		return -1;
	struct vm_config c;
	vm_config_init(&c);
	int r = vm_config_from_json(&c, doc, err);
	if (r == 0)
		r = a->ctl.start(a->ctl.ctx, &c, err);
	vm_config_free(&c);
	if (r < 0) {
		json_decref(doc);
		return vs_err_wrap(err, "%s", path);
	}
	json_decref(a->doc);
	a->doc = doc;
	a->state = API_RUNNING;
	return 0;
}

void api_adopt_running(struct api *a, json_t *doc)
{
	json_decref(a->doc);
	a->doc = doc;
	a->state = API_RUNNING;
}
