/* PUT|PATCH of a device resource (/drives/{drive_id}, /network-interfaces/{iface_id},
 * /entropy): any kind of the device table with an api_path. The body is checked alone by
 * the kind's from_json (errors name its fields), then the whole description again (one
 * root drive, the virtio device limit). */
#include <errno.h>
#include <string.h>

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
	if (find(json_object_get(a->doc, k->json_key), key, q->id) < 0)
		return vs_err(err, 0, "%s: no %s `%s` was configured", key, k->name, q->id);
	(void)r;
	return vs_err(err, 0,
		      "PATCH %s: changing a %s of a running microVM is not supported by vessel "
		      "yet",
		      k->api_path, k->name);
}
