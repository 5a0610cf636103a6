/* image_mount_root: a loaded image as a container's root. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "base/log.h"
#include "base/util.h"
#include "image/image.h"
#include "image/overlay.h"
#include "image/store.h"

static int make_root(const char *store_path, const char *ref, const char *target, const char *rwdir,
		     bool *copied, vs_err_t *err)
{
	struct store s;
	bool by_name;
	*copied = false;
	if (store_open(&s, store_path ? store_path : DEFAULT_STORE, false, err) < 0) {
		store_close(&s);
		return -1;
	}
	json_t *rec = store_find(&s, ref, &by_name, err);
	json_t *layers = rec ? json_object_get(rec, "layers") : NULL;
	size_t n = json_array_size(layers);
	const char **lowers = calloc(n ? n : 1, sizeof(char *));
	cleanup_free char *upper = NULL, *work = NULL, *layers_dir = NULL;
	int rc = -1;
	if (!rec)
		goto out;
	if (!lowers || asprintf(&upper, "%s/upper", rwdir ? rwdir : "") < 0 ||
	    asprintf(&work, "%s/work", rwdir ? rwdir : "") < 0 ||
	    asprintf(&layers_dir, "%s/layers", s.path) < 0) {
		vs_err(err, ENOMEM, "mount");
		goto out;
	}
	if (n == 0) {
		vs_err(err, 0, "image `%s` has no layers", ref);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		/* the record lists the base first; overlayfs wants the nearest first */
		const char *chain = json_string_value(
		    json_object_get(json_array_get(layers, n - 1 - i), "chain_id"));
		lowers[i] = chain && digest_valid(chain) ? store_layer_root(&s, chain) : NULL;
		if (!lowers[i]) {
			vs_err(err, 0, "image `%s`: bad layer record", ref);
			goto out;
		}
	}
	if ((rwdir && (vs_mkdir_p(upper, 0755, err) < 0 || vs_mkdir_p(work, 0700, err) < 0)) ||
	    vs_mkdir_p(target, 0755, err) < 0)
		goto out;
	if (rwdir) {
		/* absolute: the old kernels' mount resolves from the store's layers dir */
		cleanup_free char *abs_upper = realpath(upper, NULL);
		cleanup_free char *abs_work = realpath(work, NULL);
		cleanup_free char *abs_target = realpath(target, NULL);
		if (!abs_upper || !abs_work || !abs_target) {
			vs_err(err, errno, "resolve `%s`", rwdir);
			goto out;
		}
		vs_err_t why = NULL;
		if (overlay_mount(lowers, n, layers_dir, abs_upper, abs_work, abs_target, &why) ==
		    0) {
			rc = 0;
			goto out;
		}
		vs_warn("%s; copying the layers into `%s` instead", why->msg, target);
		vs_err_free(&why);
	}
	rc = overlay_copy(lowers, n, target, err);
	*copied = rc == 0;
out:
	for (size_t i = 0; lowers && i < n; i++)
		free((char *)lowers[i]);
	free(lowers);
	json_decref(rec);
	store_close(&s);
	return rc;
}

int image_mount_root(const char *store_path, const char *ref, const char *target, const char *rwdir,
		     bool *copied, vs_err_t *err)
{
	return make_root(store_path, ref, target, rwdir, copied, err);
}

int image_copy_root(const char *store_path, const char *ref, const char *target, vs_err_t *err)
{
	bool copied;
	return make_root(store_path, ref, target, NULL, &copied, err);
}

int image_umount_root(const char *target, vs_err_t *err)
{
	if (umount2(target, UMOUNT_NOFOLLOW) < 0)
		return vs_err(err, errno, "umount `%s`", target);
	return 0;
}
