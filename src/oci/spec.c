#include "oci/spec.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/util.h"
#include "sandbox/sandbox.h"
#include "oci/seccomp.h"

/* Anything 1.x parses as a 1.x document: the spec promises compatibility within a major. */
static int check_version(const char *v, vs_err_t *err)
{
	if (!vs_str_has_prefix(v, "1.") || strlen(v) < 3)
		return vs_err(err, 0, "ociVersion: unsupported version `%s` (vessel supports 1.x)",
			      v);
	return 0;
}

static int parse_root(struct spec *s, const char *bundle, vs_err_t *err)
{
	json_t *root = NULL;
	if (vjson_require(vjson_object(s->json, "", "root", &root, err), "", "root",
			  "an object with the rootfs path", err) < 0)
		return -1;
	const char *path = NULL;
	if (vjson_require(vjson_string(root, "root", "path", &path, err), "root", "path",
			  "the container's root filesystem", err) < 0)
		return -1;
	if (!*path)
		return vs_err(err, 0, "root.path: must not be empty");
	if (vjson_bool(root, "root", "readonly", &s->root_readonly, err) < 0)
		return -1;
	if (path[0] == '/' || !bundle)
		s->root_path = strdup(path);
	else if (asprintf(&s->root_path, "%s/%s", bundle, path) < 0)
		s->root_path = NULL;
	if (!s->root_path)
		return vs_err(err, ENOMEM, "root.path");
	return 0;
}

static int parse_annotations(struct spec *s, vs_err_t *err)
{
	json_t *a = NULL;
	if (vjson_object(s->json, "", "annotations", &a, err) < 0)
		return -1;
	const char *key;
	json_t *v;
	json_object_foreach(a, key, v)
	{
		if (!json_is_string(v))
			return vs_err(err, 0, "annotations.%s: must be a string", key);
	}
	s->annotations = a;
	return 0;
}

int spec_parse(json_t *json, const char *bundle, struct spec **out, vs_err_t *err)
{
	if (!json_is_object(json))
		return vs_err(err, 0, "the document must be a JSON object");
	struct spec *s = calloc(1, sizeof(*s));
	if (!s)
		return vs_err(err, ENOMEM, "spec");
	s->json = json_incref(json);
	s->personality = -1;
	if (bundle && !(s->bundle = strdup(bundle))) {
		spec_free(s);
		return vs_err(err, ENOMEM, "spec");
	}

	if (vjson_require(vjson_string(json, "", "ociVersion", &s->oci_version, err), "",
			  "ociVersion", "e.g. \"1.2.0\"", err) < 0 ||
	    check_version(s->oci_version, err) < 0)
		goto fail;
	if (parse_root(s, bundle, err) < 0)
		goto fail;
	if (vjson_string(json, "", "hostname", &s->hostname, err) < 0 ||
	    vjson_string(json, "", "domainname", &s->domainname, err) < 0)
		goto fail;

	json_t *process = NULL;
	int rc = vjson_object(json, "", "process", &process, err);
	if (rc < 0)
		goto fail;
	if (rc > 0) {
		if (spec_parse_process(process, "process", &s->process, err) < 0)
			goto fail;
		s->has_process = true;
	}

	json_t *mounts = NULL;
	if (vjson_array(json, "", "mounts", &mounts, err) < 0 ||
	    (mounts && spec_parse_mounts(mounts, s, err) < 0))
		goto fail;

	json_t *hooks = NULL;
	if (vjson_object(json, "", "hooks", &hooks, err) < 0 ||
	    (hooks && spec_parse_hooks(hooks, "hooks", &s->hooks, err) < 0))
		goto fail;
	s->hooks_json = hooks;

	if (parse_annotations(s, err) < 0)
		goto fail;

	json_t *linux_obj = NULL;
	if (vjson_object(json, "", "linux", &linux_obj, err) < 0 ||
	    spec_parse_linux(linux_obj, s, err) < 0)
		goto fail;

	if (s->hostname && !s->ns[NS_UTS].enabled)
		goto fail_uts;
	*out = s;
	return 0;

fail_uts:
	vs_err(err, 0, "hostname: needs a new uts namespace (add {\"type\": \"uts\"} to "
		       "linux.namespaces)");
fail:
	spec_free(s);
	return -1;
}

int spec_load(const char *bundle, struct spec **out, vs_err_t *err)
{
	cleanup_free char *path = NULL;
	if (asprintf(&path, "%s/config.json", bundle) < 0)
		return vs_err(err, ENOMEM, "config.json");
	json_t *j = vjson_load_file(path, 16 << 20, err);
	if (!j)
		return -1;
	int rc = spec_parse(j, bundle, out, err);
	json_decref(j);
	if (rc < 0)
		return vs_err_wrap(err, "%s", path);
	return 0;
}

void spec_process_release(struct spec_process *p)
{
	vjson_strv_free(p->args);
	vjson_strv_free(p->env);
	free(p->user.additional_gids);
	free(p->rlimits);
	memset(p, 0, sizeof(*p));
}

void spec_free(struct spec *s)
{
	if (!s)
		return;
	spec_process_release(&s->process);
	for (size_t i = 0; i < s->n_mounts; i++) {
		free(s->mounts[i].data);
		free(s->mounts[i].abs_source);
		free(s->mounts[i].uid_mappings);
		free(s->mounts[i].gid_mappings);
	}
	free(s->bundle);
	free(s->mounts);
	spec_hooks_release(&s->hooks);
	free(s->uid_mappings);
	free(s->gid_mappings);
	free(s->devices);
	free(s->sysctls);
	vjson_strv_free(s->masked_paths);
	netdev_free(s->net_devices, s->n_net_devices);
	vjson_strv_free(s->readonly_paths);
	cgroup_resources_free(s->resources);
	seccomp_spec_free(s->seccomp);
	free(s->root_path);
	json_decref(s->json);
	free(s);
}
