/* Raw cgroup files by name, for callers that take limits as FILE=VALUE (the jailer's
 * --cgroup) rather than as linux.resources. */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "sandbox/cgroup_internal.h"

/* The directory of the hierarchy that has file: its prefix before the first '.' names
 * the controller ("cgroup.*" and the like live in every cgroup2 directory). */
static struct cg_dir *dir_for_file(struct cgroup *cg, int version, const char *file, vs_err_t *err)
{
	const char *dot = strchr(file, '.');
	if (!dot || dot == file || !dot[1] || strchr(file, '/'))
		return vs_err(err, EINVAL, "cgroup file %s: not CONTROLLER.NAME", file), NULL;
	char ctrl_name[32];
	size_t len = (size_t)(dot - file);
	if (len >= sizeof(ctrl_name))
		return vs_err(err, EINVAL, "cgroup file %s: unknown controller", file), NULL;
	memcpy(ctrl_name, file, len);
	ctrl_name[len] = '\0';
	int c = cg_ctrl_from_name(ctrl_name);
	if (c < 0) {
		if (version != 1 && strcmp(ctrl_name, "cgroup") == 0 && cg_dir_v2(cg))
			return cg_dir_v2(cg);
		return vs_err(err, EINVAL, "cgroup file %s: unknown controller %s", file,
			      ctrl_name),
		       NULL;
	}
	struct cg_dir *d = NULL;
	if (version == 0) {
		d = cg_dir_for(cg, (enum cg_ctrl)c);
	} else {
		for (size_t i = 0; i < cg->n && !d; i++)
			if (cg->d[i].v2 == (version == 2) &&
			    (version == 2 || (cg->d[i].ctrls & CG_BIT(c))))
				d = &cg->d[i];
	}
	if (!d)
		return vs_err(err, ENOENT,
			      "cgroup file %s: no cgroup v%d hierarchy has the %s controller", file,
			      version ? version : 1, ctrl_name),
		       NULL;
	return d;
}

int cgroup_write_file(struct cgroup *cg, int version, const char *file, const char *value,
		      vs_err_t *err)
{
	struct cg_dir *d = dir_for_file(cg, version, file, err);
	if (!d)
		return -1;
	if (d->v2 && !cg_file_exists(d->dir, file)) {
		/* the controller's files appear once the parents delegate it */
		const char *dot = strchr(file, '.');
		char ctrl[32];
		snprintf(ctrl, sizeof(ctrl), "%.*s", (int)(dot - file), file);
		if (strcmp(ctrl, "cgroup") != 0) {
			cleanup_err vs_err_t e = NULL;
			(void)cg_v2_enable(d, ctrl, &e);
		}
	}
	if (!cg_file_exists(d->dir, file))
		return vs_err(err, ENOENT, "cgroup file %s does not exist in %s", file, d->dir);
	return cg_write(d->dir, file, value, err);
}

bool cgroup_version_available(int version)
{
	struct cg_layout *l = NULL;
	cleanup_err vs_err_t e = NULL;
	if (cg_layout_detect(&l, &e) < 0)
		return false;
	bool found = false;
	for (size_t i = 0; i < l->n && !found; i++)
		found = version == 2 ? l->h[i].v2 : (!l->h[i].v2 && l->h[i].ctrls);
	cg_layout_free(l);
	return found;
}
