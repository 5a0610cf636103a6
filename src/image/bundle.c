/* An OCI bundle's config.json from an image: `vessel spec`'s defaults (through the
 * runtime's door, oci.h) with the image config applied by the image spec's conversion
 * rules, as far as they need no engine. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/util.h"
#include "image/bundle.h"
#include "oci/oci.h"

/* config.json by the image spec's conversion rules (Entrypoint + Cmd, Env, WorkingDir,
 * a numeric User), on `vessel spec`'s defaults. */
int bundle_write_config(const struct vs_globals *g, struct store *s, json_t *rec, const char *dir,
			vs_err_t *err)
{
	char *spec_argv[] = {"spec", "--bundle", (char *)dir, NULL};
	optind = 0;
	if (oci_cmd_spec(g, 3, spec_argv, err) < 0)
		return -1;
	cleanup_free char *path = NULL, *cpath = NULL;
	const char *id = json_string_value(json_object_get(rec, "id"));
	if (asprintf(&path, "%s/config.json", dir) < 0 ||
	    asprintf(&cpath, "%s/blobs/sha256/%s", s->path, id + 7) < 0)
		return vs_err(err, ENOMEM, "bundle");
	json_t *spec = vjson_load_file(path, 1 << 20, err);
	json_t *image = spec ? vjson_load_file(cpath, 16 << 20, err) : NULL;
	if (!image) {
		json_decref(spec);
		return -1;
	}
	json_t *cfg = json_object_get(image, "config");
	json_t *process = json_object_get(spec, "process");
	json_t *args = json_array();
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(cfg, "Entrypoint"), i, v) if (json_is_string(v))
	    json_array_append(args, v);
	json_array_foreach(json_object_get(cfg, "Cmd"), i, v) if (json_is_string(v))
	    json_array_append(args, v);
	if (json_array_size(args) == 0)
		json_array_append_new(args, json_string("sh"));
	json_object_set_new(process, "args", args);
	json_object_set_new(process, "terminal", json_false());
	json_t *env = json_object_get(cfg, "Env");
	if (json_is_array(env) && json_array_size(env))
		json_object_set(process, "env", env);
	const char *wd = json_string_value(json_object_get(cfg, "WorkingDir"));
	json_object_set_new(process, "cwd", json_string(wd && *wd == '/' ? wd : "/"));
	const char *user = json_string_value(json_object_get(cfg, "User"));
	if (user && *user) {
		unsigned uid, gid = 0;
		int n = sscanf(user, "%u:%u", &uid, &gid);
		if (n < 1) {
			/* user points into image: the message is made before it is freed */
			vs_err(err, 0,
			       "image User `%s`: only numeric uid[:gid] is supported here (names "
			       "need the engine)",
			       user);
			json_decref(spec);
			json_decref(image);
			return -1;
		}
		json_object_set_new(json_object_get(process, "user"), "uid", json_integer(uid));
		json_object_set_new(json_object_get(process, "user"), "gid", json_integer(gid));
	}
	json_t *root = json_object_get(spec, "root");
	json_object_set_new(root, "path", json_string("rootfs"));
	json_object_set_new(root, "readonly", json_false());
	cleanup_free char *text = json_dumps(spec, JSON_INDENT(2));
	json_decref(spec);
	json_decref(image);
	if (!text)
		return vs_err(err, ENOMEM, "bundle");
	return vs_write_file(path, text, strlen(text), err);
}
