/* hooks of config.json. */
#include "oci/spec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/util.h"

static const char *const hook_keys[HOOK_KIND_COUNT] = {
	[HOOK_PRESTART] = "prestart",
	[HOOK_CREATE_RUNTIME] = "createRuntime",
	[HOOK_CREATE_CONTAINER] = "createContainer",
	[HOOK_START_CONTAINER] = "startContainer",
	[HOOK_POSTSTART] = "poststart",
	[HOOK_POSTSTOP] = "poststop",
};

const char *spec_hook_kind_name(enum spec_hook_kind kind)
{
	return hook_keys[kind];
}

static int parse_hook(json_t *o, const char *ip, struct spec_hook *h, vs_err_t *err)
{
	if (!json_is_object(o))
		return vs_err(err, 0, "%s: must be an object", ip);
	if (vjson_require(vjson_string(o, ip, "path", &h->path, err), ip, "path",
			  "the hook's absolute path", err) < 0)
		return -1;
	if (h->path[0] != '/')
		return vs_err(err, 0, "%s.path: must be an absolute path, not `%s`", ip, h->path);
	if (vjson_strv(o, ip, "args", false, &h->args, NULL, err) < 0 ||
	    vjson_strv(o, ip, "env", false, &h->env, NULL, err) < 0)
		return -1;
	int64_t t = 0;
	int rc = vjson_int64(o, ip, "timeout", &t, err);
	if (rc < 0)
		return -1;
	if (rc > 0 && (t <= 0 || t > 86400))
		return vs_err(err, 0, "%s.timeout: must be a positive number of seconds", ip);
	h->timeout = (int)t;
	return 0;
}

int spec_parse_hooks(json_t *hooks, const char *path, struct spec_hooks *out, vs_err_t *err)
{
	for (int k = 0; k < HOOK_KIND_COUNT; k++) {
		json_t *arr = NULL;
		if (vjson_array(hooks, path, hook_keys[k], &arr, err) < 0)
			return -1;
		size_t n = json_array_size(arr);
		if (!n)
			continue;
		out->list[k] = calloc(n, sizeof(struct spec_hook));
		if (!out->list[k])
			return vs_err(err, ENOMEM, "%s", path);
		cleanup_free char *kp = vjson_join(path, hook_keys[k]);
		for (size_t i = 0; i < n; i++) {
			cleanup_free char *ip = vjson_index(kp, i);
			out->n[k]++;
			if (parse_hook(json_array_get(arr, i), ip, &out->list[k][i], err) < 0)
				return -1;
		}
	}
	return 0;
}

void spec_hooks_release(struct spec_hooks *h)
{
	for (int k = 0; k < HOOK_KIND_COUNT; k++) {
		for (size_t i = 0; i < h->n[k]; i++) {
			vjson_strv_free(h->list[k][i].args);
			vjson_strv_free(h->list[k][i].env);
		}
		free(h->list[k]);
		h->list[k] = NULL;
		h->n[k] = 0;
	}
}
