#include "image/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/json.h"
#include "base/util.h"
#include "image/layer.h"

int store_open(struct store *s, const char *path, bool exclusive, vs_err_t *err)
{
	s->fd = s->lock = -1;
	s->path = NULL;
	if (vs_mkdir_p(path, 0700, err) < 0)
		return vs_err_wrap(err, "image store");
	/* absolute: overlay mounts name their layers by it, and gc looks for them there */
	s->path = realpath(path, NULL);
	if (!s->path)
		return vs_err(err, errno, "image store `%s`", path);
	s->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->fd < 0)
		return vs_err(err, errno, "open image store `%s`", path);
	static const char *dirs[] = {"blobs", "blobs/sha256", "layers", "images", "tmp"};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
		if (mkdirat(s->fd, dirs[i], 0700) < 0 && errno != EEXIST)
			return vs_err(err, errno, "mkdir `%s/%s`", path, dirs[i]);
	s->lock = openat(s->fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lock < 0)
		return vs_err(err, errno, "open `%s/lock`", path);
	if (flock(s->lock, exclusive ? LOCK_EX : LOCK_SH) < 0)
		return vs_err(err, errno, "lock `%s/lock`", path);
	return 0;
}

void store_close(struct store *s)
{
	if (s->lock >= 0)
		close(s->lock);
	if (s->fd >= 0)
		close(s->fd);
	free(s->path);
	s->path = NULL;
	s->fd = s->lock = -1;
}

static json_t *read_record(struct store *s, const char *file, vs_err_t *err)
{
	cleanup_free char *path = NULL;
	if (asprintf(&path, "%s/images/%s", s->path, file) < 0)
		return vs_err(err, ENOMEM, "store"), NULL;
	json_t *j = vjson_load_file(path, 1 << 24, err);
	if (!j)
		return NULL;
	const char *id = json_string_value(json_object_get(j, "id"));
	if (!json_is_object(j) || !id || !digest_valid(id) ||
	    !json_is_array(json_object_get(j, "names")) ||
	    !json_is_array(json_object_get(j, "layers"))) {
		json_decref(j);
		vs_err(err, 0, "%s: not an image record", path);
		return NULL;
	}
	return j;
}

json_t *store_images(struct store *s, vs_err_t *err)
{
	json_t *all = json_array();
	int fd = openat(s->fd, "images", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!all || !d) {
		if (fd >= 0)
			close(fd);
		json_decref(all);
		vs_err(err, errno ? errno : ENOMEM, "read `%s/images`", s->path);
		return NULL;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n != 64 + 5 || strcmp(de->d_name + 64, ".json") != 0)
			continue;
		json_t *rec = read_record(s, de->d_name, err);
		if (!rec || json_array_append_new(all, rec) < 0) {
			closedir(d);
			json_decref(all);
			return NULL;
		}
	}
	closedir(d);
	return all;
}

static bool has_name(json_t *rec, const char *name)
{
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(rec, "names"), i,
			   v) if (json_is_string(v) &&
				  strcmp(json_string_value(v), name) == 0) return true;
	return false;
}

char *image_name_normalize(const char *name)
{
	const char *slash = strrchr(name, '/');
	const char *colon = strchr(slash ? slash : name, ':');
	char *out = NULL;
	if (asprintf(&out, "%s%s", name, colon ? "" : ":latest") < 0)
		return NULL;
	return out;
}

json_t *store_find(struct store *s, const char *ref, bool *matched_name, vs_err_t *err)
{
	json_t *all = store_images(s, err);
	if (!all)
		return NULL;
	cleanup_free char *norm = image_name_normalize(ref);
	cleanup_free char *local = NULL;
	if (!norm || asprintf(&local, "localhost/%s", norm) < 0) {
		json_decref(all);
		vs_err(err, ENOMEM, "store");
		return NULL;
	}
	const char *hex = vs_str_has_prefix(ref, "sha256:") ? ref + 7 : ref;
	bool hexish =
	    strlen(hex) >= 4 && strlen(hex) <= 64 && strspn(hex, "0123456789abcdef") == strlen(hex);
	json_t *found = NULL;
	size_t i, hits = 0;
	json_t *rec;
	/* a name wins over an id prefix */
	json_array_foreach(all, i, rec)
	{
		if (has_name(rec, ref) || has_name(rec, norm) || has_name(rec, local)) {
			found = rec;
			*matched_name = true;
			goto done;
		}
	}
	json_array_foreach(all, i, rec)
	{
		if (hexish && strncmp(json_string_value(json_object_get(rec, "id")) + 7, hex,
				      strlen(hex)) == 0) {
			found = rec;
			hits++;
		}
	}
	*matched_name = false;
	if (hits > 1) {
		json_decref(all);
		vs_err(err, 0, "image `%s`: ambiguous id prefix", ref);
		return NULL;
	}
done:
	if (!found) {
		json_decref(all);
		vs_err(err, ENOENT, "image `%s`", ref);
		return NULL;
	}
	json_incref(found);
	json_decref(all);
	return found;
}

int store_write_image(struct store *s, json_t *rec, vs_err_t *err)
{
	const char *id = json_string_value(json_object_get(rec, "id"));
	cleanup_free char *text = json_dumps(rec, JSON_INDENT(2) | JSON_SORT_KEYS);
	cleanup_free char *tmp = NULL, *final = NULL;
	if (!text || asprintf(&tmp, "images/.%s.tmp", id + 7) < 0 ||
	    asprintf(&final, "images/%s.json", id + 7) < 0)
		return vs_err(err, ENOMEM, "store");
	size_t len = strlen(text);
	text[len] = '\n';
	if (vs_write_file_at(s->fd, tmp, text, len + 1, err) < 0)
		return -1;
	if (renameat(s->fd, tmp, s->fd, final) < 0)
		return vs_err(err, errno, "rename `%s/%s`", s->path, final);
	return 0;
}

int store_delete_image(struct store *s, const char *id, vs_err_t *err)
{
	char file[128];
	snprintf(file, sizeof(file), "images/%s.json", id + 7);
	if (unlinkat(s->fd, file, 0) < 0 && errno != ENOENT)
		return vs_err(err, errno, "remove `%s/%s`", s->path, file);
	return 0;
}

bool store_has_layer(struct store *s, const char *chain_id)
{
	char p[128];
	snprintf(p, sizeof(p), "layers/%s/root", chain_id + 7);
	return faccessat(s->fd, p, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

char *store_layer_root(struct store *s, const char *chain_id)
{
	char *p = NULL;
	if (asprintf(&p, "%s/layers/%s/root", s->path, chain_id + 7) < 0)
		return NULL;
	return p;
}

void chain_id_next(const char *parent, const char *diff_id, char *out)
{
	if (!parent) {
		strcpy(out, diff_id);
		return;
	}
	struct sha256_ctx c;
	uint8_t d[SHA256_DIGEST_SIZE];
	sha256_init(&c);
	sha256_update(&c, strlen(parent), (const uint8_t *)parent);
	sha256_update(&c, 1, (const uint8_t *)" ");
	sha256_update(&c, strlen(diff_id), (const uint8_t *)diff_id);
	sha256_digest(&c, sizeof(d), d);
	strcpy(out, "sha256:");
	for (size_t i = 0; i < sizeof(d); i++)
		sprintf(out + 7 + 2 * i, "%02x", d[i]);
}

/* Is path one of an overlay mount's layers? mountinfo shows the options; a layer in use
 * must survive rm and prune. */
static bool layer_mounted(const char *mountinfo, const char *root)
{
	/* mountinfo writes these as octal escapes in mount options (seq_show_option) */
	char escaped[4 * 512 + 1];
	size_t o = 0;
	for (const char *c = root; *c && o + 5 < sizeof(escaped); c++) {
		if (strchr(" \t\n\\,", *c))
			o += (size_t)snprintf(escaped + o, 5, "\\%03o", (unsigned char)*c);
		else
			escaped[o++] = *c;
	}
	escaped[o] = '\0';
	return mountinfo && strstr(mountinfo, escaped) != NULL;
}

int store_gc(struct store *s, unsigned *n_layers, unsigned *n_blobs, vs_err_t *err)
{
	*n_layers = *n_blobs = 0;
	json_t *all = store_images(s, err);
	if (!all)
		return -1;
	json_t *keep = json_object();
	size_t i, k;
	json_t *rec, *l;
	json_array_foreach(all, i, rec)
	{
		json_object_set_new(keep, json_string_value(json_object_get(rec, "id")) + 7,
				    json_true());
		const char *m = json_string_value(json_object_get(rec, "manifest"));
		if (m && digest_valid(m))
			json_object_set_new(keep, m + 7, json_true());
		json_array_foreach(json_object_get(rec, "layers"), k, l)
		{
			const char *c = json_string_value(json_object_get(l, "chain_id"));
			if (c && digest_valid(c))
				json_object_set_new(keep, c + 7, json_true());
		}
	}
	json_decref(all);
	cleanup_free char *mountinfo = NULL;
	size_t len;
	vs_err_t ignored = NULL;
	if (vs_read_file("/proc/self/mountinfo", 1 << 24, &mountinfo, &len, &ignored) < 0)
		vs_err_free(&ignored);
	static const char *dirs[] = {"layers", "blobs/sha256"};
	int rc = 0;
	for (size_t d = 0; d < 2 && rc == 0; d++) {
		int fd = openat(s->fd, dirs[d], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
		if (!dir) {
			if (fd >= 0)
				close(fd);
			rc = vs_err(err, errno, "read `%s/%s`", s->path, dirs[d]);
			break;
		}
		struct dirent *de;
		while (rc == 0 && (de = readdir(dir))) {
			if (de->d_name[0] == '.' || json_object_get(keep, de->d_name))
				continue;
			if (d == 0) {
				char root[512];
				snprintf(root, sizeof(root), "%s/layers/%s/root", s->path,
					 de->d_name);
				if (layer_mounted(mountinfo, root))
					continue;
			}
			rc = vs_remove_tree(dirfd(dir), de->d_name, err);
			if (rc == 0)
				(*(d == 0 ? n_layers : n_blobs))++;
		}
		closedir(dir);
	}
	json_decref(keep);
	return rc;
}
