/* PUT /boot-source: the kernel, initrd and boot arguments. Pre-boot only. */
#include <errno.h>
#include <unistd.h>

#include "base/json.h"
#include "vmm/api/resources.h"

/* A path the VMM must read: refused now, not at InstanceStart (as Firecracker). */
static int readable(json_t *o, const char *key, vs_err_t *err)
{
	const char *path = NULL;
	if (vjson_string(o, "boot-source", key, &path, err) < 0)
		return -1;
	if (path && access(path, R_OK) < 0)
		return vs_err(err, errno, "boot-source.%s `%s`", key, path);
	return 0;
}

int res_boot_source_put(struct api *a, const struct api_request *q, struct api_response *r,
			vs_err_t *err)
{
	if (api_before_start(a, "PUT /boot-source", err) < 0)
		return -1;
	json_t *next = json_deep_copy(a->doc);
	if (!next)
		return vs_err(err, ENOMEM, "boot-source");
	json_object_set(next, "boot-source", q->body);
	/* the shape first (a missing or unknown member is named as such), then the files */
	if (api_check(next, err) < 0 || readable(q->body, "kernel_image_path", err) < 0 ||
	    readable(q->body, "initrd_path", err) < 0) {
		json_decref(next);
		return -1;
	}
	if (api_commit(a, next, err) < 0)
		return -1;
	api_ok_empty(r);
	return 0;
}
