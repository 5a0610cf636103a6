/* A container's cgroup in state.json, so that `vessel delete` in another process removes
 * exactly the directories `create` made, and nothing a tampered file points at. */
#include <errno.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>

#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "sandbox/cgroup_internal.h"

static json_t *ctrl_names(uint32_t mask)
{
	json_t *names = json_array();
	for (int c = 0; names && c < CG_NCTRL; c++)
		if (mask & CG_BIT(c))
			json_array_append_new(names, json_string(cg_ctrl_name(c)));
	return names;
}

static int ctrl_mask(json_t *arr, const char *jpath, const char *key, uint32_t *out, vs_err_t *err)
{
	size_t i;
	json_t *c;
	json_array_foreach(arr, i, c)
	{
		int ctrl = json_is_string(c) ? cg_ctrl_from_name(json_string_value(c)) : -1;
		if (ctrl < 0)
			return vs_err(err, 0, "%s.%s[%zu]: unknown controller", jpath, key, i);
		*out |= CG_BIT(ctrl);
	}
	return 0;
}

json_t *cgroup_to_json(const struct cgroup *cg)
{
	json_t *dirs = json_array();
	for (size_t i = 0; dirs && i < cg->n; i++) {
		const struct cg_dir *d = &cg->d[i];
		json_t *entry = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o*, s:i}", "name", d->name,
					  "dir", d->dir, "fstype", d->fstype, "options", d->options,
					  "mountpoint", d->mountpoint, "controllers",
					  ctrl_names(d->ctrls), "created", d->created);
		if (entry && d->root_enabled)
			json_object_set_new(entry, "rootEnabled", ctrl_names(d->root_enabled));
		json_array_append_new(dirs, entry);
	}
	return json_pack("{s:s, s:o*}", "path", cg->path, "dirs", dirs);
}

/* Absolute, and no ".." component: state.json must not steer rmdir elsewhere. */
static bool clean_abs_path(const char *p)
{
	if (p[0] != '/' || strlen(p) >= 4096)
		return false;
	for (const char *s = p; (s = strstr(s, "..")); s += 2)
		if (s[-1] == '/' && (s[2] == '/' || s[2] == '\0'))
			return false;
	return true;
}

static int dir_from_json(json_t *j, const char *jpath, struct cg_dir *d, vs_err_t *err)
{
	const char *name, *dir, *fstype, *options, *mnt;
	json_t *ctrls;
	int64_t created;
	if (!json_is_object(j))
		return vs_err(err, 0, "%s: must be an object", jpath);
	if (vjson_require(vjson_string(j, jpath, "name", &name, err), jpath, "name", "", err) < 0 ||
	    vjson_require(vjson_string(j, jpath, "dir", &dir, err), jpath, "dir", "", err) < 0 ||
	    vjson_require(vjson_string(j, jpath, "fstype", &fstype, err), jpath, "fstype", "",
			  err) < 0 ||
	    vjson_require(vjson_string(j, jpath, "options", &options, err), jpath, "options", "",
			  err) < 0 ||
	    vjson_require(vjson_string(j, jpath, "mountpoint", &mnt, err), jpath, "mountpoint", "",
			  err) < 0 ||
	    vjson_require(vjson_array(j, jpath, "controllers", &ctrls, err), jpath, "controllers",
			  "", err) < 0 ||
	    vjson_require(vjson_int_range(j, jpath, "created", 0, CG_MAX_DEPTH, &created, err),
			  jpath, "created", "", err) < 0)
		return -1;
	/* destroy kills and rmdirs what this names: only directories inside a cgroup mount */
	size_t mlen = strlen(mnt);
	if (!clean_abs_path(dir) || !clean_abs_path(mnt) || strncmp(dir, mnt, mlen) != 0 ||
	    dir[mlen] != '/')
		return vs_err(err, 0, "%s.dir: `%s` is not a cgroup directory", jpath, dir);
	if (strcmp(fstype, "cgroup") != 0 && strcmp(fstype, "cgroup2") != 0)
		return vs_err(err, 0, "%s.fstype: must be \"cgroup\" or \"cgroup2\"", jpath);
	/* a hierarchy unmounted since (a v1 controller moved back to cgroup2, say) took the
	 * container's directory with it: nothing there to kill or remove, and never a reason
	 * to keep the container undeletable */
	struct statfs fs;
	if (statfs(mnt, &fs) < 0 ||
	    (fs.f_type != CGROUP_SUPER_MAGIC && fs.f_type != CGROUP2_SUPER_MAGIC)) {
		vs_warn("%s: `%s` is no longer a cgroup mount: skipped", jpath, mnt);
		return 1;
	}
	d->name = strdup(name);
	d->dir = strdup(dir);
	d->fstype = strdup(fstype);
	d->options = strdup(options);
	d->mountpoint = strdup(mnt);
	d->v2 = strcmp(fstype, "cgroup2") == 0;
	d->created = (int)created;
	if (!d->name || !d->dir || !d->fstype || !d->options || !d->mountpoint)
		return vs_err(err, ENOMEM, "%s", jpath);
	json_t *root_enabled = NULL;
	if (ctrl_mask(ctrls, jpath, "controllers", &d->ctrls, err) < 0 ||
	    vjson_array(j, jpath, "rootEnabled", &root_enabled, err) < 0 ||
	    (root_enabled &&
	     ctrl_mask(root_enabled, jpath, "rootEnabled", &d->root_enabled, err) < 0))
		return -1;
	return 0;
}

int cgroup_from_json(json_t *j, struct cgroup **out, vs_err_t *err)
{
	const char *path;
	json_t *dirs;
	if (!json_is_object(j))
		return vs_err(err, 0, "cgroup: must be an object");
	if (vjson_require(vjson_string(j, "cgroup", "path", &path, err), "cgroup", "path", "",
			  err) < 0 ||
	    vjson_require(vjson_array(j, "cgroup", "dirs", &dirs, err), "cgroup", "dirs", "", err) <
		0)
		return -1;
	if (!clean_abs_path(path))
		return vs_err(err, 0, "cgroup.path: `%s` is not a cgroup path", path);
	if (json_array_size(dirs) > 64)
		return vs_err(err, 0, "cgroup.dirs: too many hierarchies");
	struct cgroup *cg = calloc(1, sizeof(*cg));
	if (!cg || !(cg->path = strdup(path)) ||
	    !(cg->d = calloc(json_array_size(dirs) + 1, sizeof(*cg->d)))) {
		cgroup_free(cg);
		return vs_err(err, ENOMEM, "cgroup");
	}
	for (size_t i = 0; i < json_array_size(dirs); i++) {
		char jpath[48];
		snprintf(jpath, sizeof(jpath), "cgroup.dirs[%zu]", i);
		cg->n++;
		int rc = dir_from_json(json_array_get(dirs, i), jpath, &cg->d[cg->n - 1], err);
		if (rc < 0) {
			cgroup_free(cg);
			return -1;
		}
		if (rc > 0) {
			cg->n--;
			memset(&cg->d[cg->n], 0, sizeof(cg->d[cg->n]));
		}
	}
	if (cg_finish(cg, err) < 0) {
		cgroup_free(cg);
		return -1;
	}
	*out = cg;
	return 0;
}
