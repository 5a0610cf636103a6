/* PUT|PATCH of a device resource (/drives/{drive_id}, /network-interfaces/{iface_id},
 * /entropy): any kind of the device table with an api_path. The body is checked alone by
 * the kind's from_json (errors name its fields), then the whole description again (one
 * root drive, the virtio device limit). */
#include <errno.h>
#include <string.h>

#include "base/json.h"
#include "base/util.h"
#include "vmm/api/resources.h"

/* "drive_id" from "/drives/{drive_id}" (into buf); NULL for a path without an id. */
static const char *id_member(const struct device_kind *k, char *buf, size_t len)
{
	const char *open = strchr(k->api_path, '{');
	if (!open)
		return NULL;
	size_t n = strcspn(open + 1, "}");
	if (n >= len)
		n = len - 1;
	memcpy(buf, open + 1, n);
	buf[n] = '\0';
	return buf;
}

static int check_alone(const struct device_kind *k, json_t *body, vs_err_t *err)
{
	struct vm_config c;
	if (!k->from_json)
		return vs_err(err, 0, "%s: not configurable through the API", k->name);
	vm_config_init(&c);
	void *config = NULL;
	int r = vm_config_add_device(&c, k, k->json_key, &config, err);
	if (r == 0)
		r = k->from_json(body, config, err);
	vm_config_free(&c);
	return r;
}

/* The index of the element of array whose member key is id, or -1. */
static ssize_t find(json_t *array, const char *key, const char *id)
{
	size_t i;
	json_t *e;
	json_array_foreach(array, i, e)
	{
		const char *v = json_string_value(json_object_get(e, key));
		if (v && strcmp(v, id) == 0)
			return (ssize_t)i;
	}
	return -1;
}

static int same_id(const struct api_request *q, const char *key, vs_err_t *err)
{
	json_t *v = json_object_get(q->body, key);
	if (!v)
		return vs_err(err, 0, "%s: is required", key);
	if (!json_is_string(v))
		return vs_err(err, 0, "%s: must be a string", key);
	if (strcmp(json_string_value(v), q->id) != 0)
		return vs_err(err, 0, "%s: the body's id differs from the path's `%s`", key, q->id);
	return 0;
}

int res_device_put(struct api *a, const struct api_request *q, struct api_response *r,
		   vs_err_t *err)
{
	const struct device_kind *k = q->kind;
	cleanup_free char *what = NULL;
	if (asprintf(&what, "PUT %s", q->path) < 0)
		return vs_err(err, ENOMEM, "%s", k->name);
	if (api_before_start(a, what, err) < 0)
		return -1;
	char buf[32];
	const char *key = id_member(k, buf, sizeof(buf));
	if (key && same_id(q, key, err) < 0)
		return -1;
	if (check_alone(k, q->body, err) < 0)
		return -1;
	json_t *next = json_deep_copy(a->doc);
	if (!next)
		return vs_err(err, ENOMEM, "%s", k->name);
	if (k->json_array) {
		json_t *list = json_object_get(next, k->json_key);
		if (!list) {
			list = json_array();
			json_object_set_new(next, k->json_key, list);
		}
		ssize_t i = key ? find(list, key, q->id) : -1;
		if (i >= 0)
			json_array_set(list, (size_t)i, q->body);
		else
			json_array_append(list, q->body);
	} else {
		json_object_set(next, k->json_key, q->body);
	}
	if (api_commit(a, next, err) < 0)
		return -1;
	api_ok_empty(r);
	return 0;
}

/* The description after a PATCH: the entry takes the body's members; a rate limiter's
 * buckets are replaced one by one (a bucket the body leaves out stays). null is "not
 * given", at either level, as the config code reads it. */
static int merge_patch(json_t *entry, json_t *body, vs_err_t *err)
{
	const char *key, *sub;
	json_t *v, *w;
	json_object_foreach(body, key, v)
	{
		if (json_is_null(v))
			continue;
		if (!json_is_object(v)) {
			if (json_object_set(entry, key, v))
				return vs_err(err, ENOMEM, "%s", key);
			continue;
		}
		json_t *old = json_object_get(entry, key);
		if (!json_is_object(old) &&
		    (!(old = json_object()) || json_object_set_new(entry, key, old)))
			return vs_err(err, ENOMEM, "%s", key);
		json_object_foreach(v, sub, w)
		{
			if (!json_is_null(w) && json_object_set(old, sub, w))
				return vs_err(err, ENOMEM, "%s", key);
		}
	}
	return 0;
}

/* Where the description's k->json_key[j] is among the VM's devices of kind k: the config
 * code orders them (the root drive first, as vda), the builder keeps that order. */
static int built_index(json_t *doc, const struct device_kind *k, size_t j, unsigned *out,
		       vs_err_t *err)
{
	struct vm_config c;
	vm_config_init(&c);
	cleanup_free char *origin = vjson_index(k->json_key, j);
	int r = origin ? vm_config_from_json_partial(&c, doc, err)
		       : vs_err(err, ENOMEM, "%s", k->name);
	unsigned n = 0;
	for (unsigned i = 0; r == 0 && i < c.ndevices; i++) {
		if (c.devices[i].kind != k)
			continue;
		if (!strcmp(c.devices[i].origin, origin)) {
			*out = n;
			break;
		}
		n++;
	}
	if (r == 0 && n == vm_config_count(&c, k))
		r = vs_err(err, 0, "%s: not among the microVM's devices", origin);
	vm_config_free(&c);
	return r;
}

/* Firecracker's PATCH of a drive (path_on_host, rate_limiter) or of an interface (its rate
 * limiters) on a started microVM, running or paused; before InstanceStart, as Firecracker,
 * it is refused (PUT the whole object instead). */
int res_device_patch(struct api *a, const struct api_request *q, struct api_response *r,
		     vs_err_t *err)
{
	const struct device_kind *k = q->kind;
	char buf[32];
	const char *key = id_member(k, buf, sizeof(buf));
	cleanup_free char *what = NULL;
	if (asprintf(&what, "PATCH %s", q->path) < 0)
		return vs_err(err, ENOMEM, "%s", k->name);
	if (api_after_start(a, what, err) < 0)
		return -1;
	if (key && same_id(q, key, err) < 0)
		return -1;
	ssize_t i = find(json_object_get(a->doc, k->json_key), key, q->id);
	if (i < 0)
		return vs_err(err, 0, "%s: no %s `%s` was configured", key, k->name, q->id);
	if (!a->ctl.device_update)
		return vs_err(err, 0, "%s: not supported by this instance", what);
	unsigned index = 0;
	if (built_index(a->doc, k, (size_t)i, &index, err) < 0)
		return -1;
	json_t *next = json_deep_copy(a->doc);
	if (!next)
		return vs_err(err, ENOMEM, "%s", k->name);
	json_t *entry = json_array_get(json_object_get(next, k->json_key), (size_t)i);
	/* the description first: once the device has changed, nothing may fail */
	if (merge_patch(entry, q->body, err) < 0 ||
	    a->ctl.device_update(a->ctl.ctx, k, index, q->body, err) < 0) {
		json_decref(next);
		return -1;
	}
	json_decref(a->doc);
	a->doc = next;
	api_ok_empty(r);
	return 0;
}
