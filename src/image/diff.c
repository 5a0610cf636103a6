/* image_diff: what a container changed in its root, read from its overlay upper dir:
 * `A` added, `C` changed (in some lower layer too), `D` deleted (a whiteout), docker
 * diff's letters and order (a directory before what is in it, names sorted). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "base/util.h"
#include "image/image.h"
#include "image/store.h"

struct diff {
	char **lowers; /* nearest first */
	size_t n;
	FILE *out;
};

static bool is_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

/* Does path exist in the image (the lowers as overlayfs merges them)? The nearest layer
 * that has the name (or its whiteout) decides. */
static bool in_image(struct diff *d, const char *path)
{
	for (size_t i = 0; i < d->n; i++) {
		char p[8192];
		struct stat st;
		if (snprintf(p, sizeof(p), "%s/%s", d->lowers[i], path) >= (int)sizeof(p))
			return false;
		if (lstat(p, &st) == 0)
			return !is_whiteout(&st);
	}
	return false;
}

static int walk(struct diff *d, const char *upper, const char *rel, vs_err_t *err)
{
	char dir[8192];
	if (snprintf(dir, sizeof(dir), "%s%s%s", upper, *rel ? "/" : "", rel) >= (int)sizeof(dir))
		return vs_err(err, ENAMETOOLONG, "diff: `%s`", rel);
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort);
	if (n < 0)
		return vs_err(err, errno, "read `%s`", dir);
	int rc = 0;
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		if (rc == 0 && strcmp(name, ".") != 0 && strcmp(name, "..") != 0) {
			char path[8192], full[8192];
			struct stat st;
			if (snprintf(path, sizeof(path), "%s%s%s", rel, *rel ? "/" : "", name) >=
				(int)sizeof(path) ||
			    snprintf(full, sizeof(full), "%s/%s", upper, path) >=
				(int)sizeof(full)) {
				rc = vs_err(err, ENAMETOOLONG, "diff: `%s/%s`", rel, name);
			} else if (lstat(full, &st) < 0) {
				rc = vs_err(err, errno, "stat `%s`", full);
			} else if (is_whiteout(&st)) {
				fprintf(d->out, "D /%s\n", path);
			} else {
				fprintf(d->out, "%c /%s\n", in_image(d, path) ? 'C' : 'A', path);
				if (S_ISDIR(st.st_mode))
					rc = walk(d, upper, path, err);
			}
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int image_diff(const char *store_path, const char *ref, const char *rwdir, FILE *out, vs_err_t *err)
{
	struct store s;
	bool by_name;
	if (store_open(&s, store_path ? store_path : DEFAULT_STORE, false, err) < 0) {
		store_close(&s);
		return -1;
	}
	json_t *rec = store_find(&s, ref, &by_name, err);
	json_t *layers = rec ? json_object_get(rec, "layers") : NULL;
	struct diff d = {.n = json_array_size(layers), .out = out};
	d.lowers = calloc(d.n + 1, sizeof(char *));
	cleanup_free char *upper = NULL;
	int rc = -1;
	if (!rec)
		goto out;
	if (!d.lowers || asprintf(&upper, "%s/upper", rwdir) < 0) {
		vs_err(err, ENOMEM, "diff");
		goto out;
	}
	for (size_t i = 0; i < d.n; i++) {
		const char *chain = json_string_value(
		    json_object_get(json_array_get(layers, d.n - 1 - i), "chain_id"));
		d.lowers[i] = chain && digest_valid(chain) ? store_layer_root(&s, chain) : NULL;
		if (!d.lowers[i]) {
			vs_err(err, 0, "image `%s`: bad layer record", ref);
			goto out;
		}
	}
	rc = walk(&d, upper, "", err);
out:
	for (size_t i = 0; d.lowers && i < d.n; i++)
		free(d.lowers[i]);
	free(d.lowers);
	json_decref(rec);
	store_close(&s);
	return rc;
}
