#include "vmm/virtio/blk_spec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "vmm/config.h"

static int parse_id(struct blk_spec *s, const char *v, vs_err_t *err)
{
	size_t len = v ? strlen(v) : 0;
	if (len == 0)
		return vs_err(err, 0, "id: needs a name (id=NAME)");
	if (len > VIRTIO_BLK_ID_BYTES)
		return vs_err(err, 0, "id: `%s` is longer than %d bytes", v, VIRTIO_BLK_ID_BYTES);
	for (const char *p = v; *p; p++)
		if (*p < 0x21 || *p > 0x7e)
			return vs_err(err, 0, "id: `%s`: only printable ASCII without spaces", v);
	memcpy(s->id, v, len + 1);
	s->has_id = true;
	return 0;
}

static int parse_flag(bool *flag, const char *key, const char *v, vs_err_t *err)
{
	if (v)
		return vs_err(err, 0, "%s: takes no value", key);
	*flag = true;
	return 0;
}

static int parse_option(struct blk_spec *s, char *opt, vs_err_t *err)
{
	char *v = strchr(opt, '=');
	if (v)
		*v++ = '\0';
	if (!strcmp(opt, "ro"))
		return parse_flag(&s->ro, opt, v, err);
	if (!strcmp(opt, "direct"))
		return parse_flag(&s->direct, opt, v, err);
	if (!strcmp(opt, "id"))
		return parse_id(s, v, err);
	int r = rl_parse_option(&s->rl, opt, v, err);
	if (r != 0)
		return r < 0 ? -1 : 0;
	return vs_err(err, 0,
		      "`%s`: unknown option (ro, id=NAME, direct, bw=RATE, iops=N, "
		      "bw_burst=SIZE, iops_burst=N)",
		      opt);
}

int blk_spec_parse(const char *spec, struct blk_spec *out, vs_err_t *err)
{
	*out = (struct blk_spec){0};
	rl_init(&out->rl);
	char *copy = strdup(spec);
	if (!copy)
		return vs_err(err, ENOMEM, "--disk");
	char *save = NULL, *opt = copy;
	char *comma = strchr(copy, ',');
	if (comma)
		*comma = '\0';
	if (!*copy) {
		free(copy);
		return vs_err(err, 0, "needs a file or block device (PATH[,options])");
	}
	out->path = strdup(copy);
	if (!out->path) {
		free(copy);
		return vs_err(err, ENOMEM, "--disk");
	}
	int r = 0;
	for (opt = comma ? strtok_r(comma + 1, ",", &save) : NULL; opt && r == 0;
	     opt = strtok_r(NULL, ",", &save))
		r = parse_option(out, opt, err);
	free(copy);
	if (r == 0)
		r = rl_check(&out->rl, err);
	if (r < 0) {
		blk_spec_free(out);
		return -1;
	}
	return 0;
}

static int one_of(json_t *obj, const char *key, const char *a, const char *b, vs_err_t *err)
{
	const char *v = NULL;
	int rc = vjson_string(obj, NULL, key, &v, err);
	if (rc > 0 && strcmp(v, a) != 0 && strcmp(v, b) != 0)
		return vs_err(err, 0, "%s: `%s`: must be %s or %s", key, v, a, b);
	return rc < 0 ? -1 : 0;
}

int blk_spec_from_json(json_t *obj, struct blk_spec *out, vs_err_t *err)
{
	static const char *const keys[] = {"drive_id",	     "path_on_host", "is_read_only",
					   "is_root_device", "partuuid",     "cache_type",
					   "io_engine",	     "rate_limiter", NULL};
	*out = (struct blk_spec){0};
	rl_init(&out->rl);
	if (json_object_get(obj, "socket"))
		return vs_err(err, 0, "socket: vhost-user drives are not supported");
	const char *path = NULL;
	bool root = false;
	if (vm_json_only(obj, keys, err) < 0 || vm_json_api_id(obj, "drive_id", err) < 0 ||
	    vjson_require(vjson_string(obj, NULL, "path_on_host", &path, err), NULL, "path_on_host",
			  "a string", err) < 0 ||
	    vjson_require(vjson_bool(obj, NULL, "is_root_device", &root, err), NULL,
			  "is_root_device", "a boolean", err) < 0 ||
	    vjson_bool(obj, NULL, "is_read_only", &out->ro, err) < 0 ||
	    /* vessel always honours flushes and always uses io_uring: both values do */
	    one_of(obj, "cache_type", "Unsafe", "Writeback", err) < 0 ||
	    one_of(obj, "io_engine", "Sync", "Async", err) < 0 ||
	    vm_json_rate_limiter(obj, "rate_limiter", &out->rl, err) < 0)
		return -1;
	if (!*path)
		return vs_err(err, 0, "path_on_host: must not be empty");
	out->path = strdup(path);
	if (!out->path)
		return vs_err(err, ENOMEM, "path_on_host");
	return 0;
}

void blk_spec_free(struct blk_spec *s)
{
	free(s->path);
	s->path = NULL;
}

int blk_patch_from_json(json_t *obj, struct blk_patch *out, vs_err_t *err)
{
	static const char *const keys[] = {"drive_id", "path_on_host", "rate_limiter", NULL};
	*out = (struct blk_patch){0};
	int rc;
	if (vm_json_only(obj, keys, err) < 0 || vm_json_api_id(obj, "drive_id", err) < 0 ||
	    vjson_string(obj, NULL, "path_on_host", &out->path, err) < 0 ||
	    (rc = vm_json_rate_limiter_patch(obj, "rate_limiter", &out->rl, err)) < 0)
		return -1;
	out->has_rl = rc > 0;
	if (out->path && !*out->path)
		return vs_err(err, 0, "path_on_host: must not be empty");
	if (!out->path && !out->has_rl)
		return vs_err(err, 0,
			      "nothing to change: give path_on_host, rate_limiter or both");
	return 0;
}
