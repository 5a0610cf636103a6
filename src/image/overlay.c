#include "image/overlay.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

static int mount_new_api(const char *const *lowers, size_t n, const char *upper, const char *work,
			 const char *target, vs_err_t *err)
{
	cleanup_close int fs = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fs < 0)
		return vs_err(err, errno, "fsopen overlay");
	for (size_t i = 0; i < n; i++)
		if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir+", lowers[i], 0) < 0)
			return vs_err(err, errno, "overlay: lowerdir+ `%s`", lowers[i]);
	if (fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0 ||
	    fsconfig(fs, FSCONFIG_SET_STRING, "workdir", work, 0) < 0 ||
	    fsconfig(fs, FSCONFIG_SET_STRING, "index", "off", 0) < 0)
		return vs_err(err, errno, "overlay: upperdir `%s`, workdir `%s`", upper, work);
	if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return vs_err(err, errno, "overlay: create (upper `%s`)", upper);
	cleanup_close int mnt = fsmount(fs, FSMOUNT_CLOEXEC, 0);
	if (mnt < 0)
		return vs_err(err, errno, "overlay: fsmount");
	if (move_mount(mnt, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return vs_err(err, errno, "overlay: mount on `%s`", target);
	return 0;
}

/* One option string, the lowers relative to layers_dir (the cwd while mounting). */
int overlay_mount_legacy(const char *const *lowers, size_t n, const char *layers_dir,
			 const char *upper, const char *work, const char *target, vs_err_t *err)
{
	size_t dl = strlen(layers_dir);
	size_t cap = 4096, len = 0;
	char *opts = malloc(cap);
	if (!opts)
		return vs_err(err, ENOMEM, "overlay");
	len =
	    (size_t)snprintf(opts, cap, "index=off,upperdir=%s,workdir=%s,lowerdir=", upper, work);
	for (size_t i = 0; i < n && len < cap; i++) {
		const char *l = lowers[i];
		if (strncmp(l, layers_dir, dl) == 0 && l[dl] == '/')
			l += dl + 1;
		len += (size_t)snprintf(opts + len, cap - len, "%s%s", i ? ":" : "", l);
	}
	if (len >= cap - 1) {
		free(opts);
		return vs_err(err, E2BIG,
			      "overlay: %zu layers do not fit one page of mount "
			      "options on this kernel (no lowerdir+)",
			      n);
	}
	int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;
	if (cwd < 0 || chdir(layers_dir) < 0)
		rc = vs_err(err, errno, "overlay: chdir `%s`", layers_dir);
	else if (mount("overlay", target, "overlay", 0, opts) < 0)
		rc = vs_err(err, errno, "overlay: mount on `%s`", target);
	if (cwd >= 0) {
		if (fchdir(cwd) < 0 && rc == 0)
			rc = vs_err(err, errno, "fchdir");
		close(cwd);
	}
	free(opts);
	return rc;
}

int overlay_mount(const char *const *lowers, size_t n, const char *layers_dir, const char *upper,
		  const char *work, const char *target, vs_err_t *err)
{
	vs_err_t first = NULL;
	if (mount_new_api(lowers, n, upper, work, target, &first) == 0)
		return 0;
	if (first->errnum != EINVAL) {
		*err = first;
		return -1;
	}
	vs_debug("%s: trying one lowerdir= option", first->msg);
	vs_err_free(&first);
	return overlay_mount_legacy(lowers, n, layers_dir, upper, work, target, err);
}
