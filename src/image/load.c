#include "image/load.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/inroot.h"
#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "image/layer.h"
#include "image/manifest.h"

#define MAX_DOC (16u << 20) /* manifests, indexes, configs */
#define MAX_DEPTH 8

struct load {
	struct store *s;
	const struct load_opts *o;
	const char *src;
	int in;		/* the layout's root */
	int stage;	/* STORE/tmp/load-XXXXXX */
	json_t *staged; /* ChainIDs and blob digests staged here */
	json_t *images; /* the records to write */
};

static int open_in(struct load *l, const char *path, vs_err_t *err)
{
	int fd = vs_openat2_in_root(l->in, path, O_RDONLY, 0);
	if (fd < 0)
		return vs_err(err, errno, "%s: `%s`", l->src, path);
	return fd;
}

static void sha256_hex(const void *buf, size_t len, char *out)
{
	struct sha256_ctx c;
	uint8_t d[SHA256_DIGEST_SIZE];
	sha256_init(&c);
	sha256_update(&c, len, buf);
	sha256_digest(&c, sizeof(d), d);
	strcpy(out, "sha256:");
	for (size_t i = 0; i < sizeof(d); i++)
		sprintf(out + 7 + 2 * i, "%02x", d[i]);
}

static int read_path(struct load *l, const char *path, char **buf, size_t *len, vs_err_t *err)
{
	cleanup_close int fd = open_in(l, path, err);
	if (fd < 0)
		return -1;
	char p[64];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	if (vs_read_file(p, MAX_DOC, buf, len, err) < 0)
		return vs_err_wrap(err, "%s: `%s`", l->src, path);
	return 0;
}

/* A blob of the layout by its descriptor, its size and digest checked. */
static int read_blob(struct load *l, const char *digest, int64_t size, char **buf, size_t *len,
		     vs_err_t *err)
{
	char path[128], got[DIGEST_LEN + 1];
	snprintf(path, sizeof(path), "blobs/sha256/%s", digest + 7);
	if (read_path(l, path, buf, len, err) < 0)
		return -1;
	if (size >= 0 && (uint64_t)size != *len)
		return vs_err(err, 0, "blob %s: %zu bytes, its descriptor says %lld (truncated?)",
			      digest, *len, (long long)size);
	sha256_hex(*buf, *len, got);
	if (strcmp(got, digest) != 0)
		return vs_err(err, 0, "blob %s: digest mismatch: its content is %s", digest, got);
	return 0;
}

/* Keeps a verified manifest or config in the store's blobs. */
static int stage_blob(struct load *l, const char *digest, const char *buf, size_t len,
		      vs_err_t *err)
{
	if (json_object_get(l->staged, digest))
		return 0;
	char path[128];
	snprintf(path, sizeof(path), "blobs/%s", digest + 7);
	if (vs_write_file_at(l->stage, path, buf, len, err) < 0)
		return -1;
	return json_object_set_new(l->staged, digest, json_pack("{s:s}", "kind", "blob"));
}

static int unpack_layer(struct load *l, const char *path, const struct descriptor *d,
			const char *diff_id, const char *chain_id, json_t *layers, vs_err_t *err)
{
	json_t *row = json_pack("{s:s, s:s, s:s?}", "chain_id", chain_id, "diff_id", diff_id,
				"digest", d ? d->digest : NULL);
	if (!row || json_array_append_new(layers, row) < 0)
		return vs_err(err, ENOMEM, "load");
	json_t *done = json_object_get(l->staged, chain_id);
	if (done) {
		json_object_set(row, "size", json_object_get(done, "size"));
		return 0;
	}
	if (store_has_layer(l->s, chain_id)) {
		/* shared with an image already here: never unpacked twice */
		char meta[128];
		snprintf(meta, sizeof(meta), "%s/layers/%s/layer.json", l->s->path, chain_id + 7);
		vs_err_t ignored = NULL;
		json_t *j = vjson_load_file(meta, 1 << 16, &ignored);
		vs_err_free(&ignored);
		if (j)
			json_object_set(row, "size", json_object_get(j, "size"));
		json_decref(j);
		return 0;
	}
	char dir[128];
	snprintf(dir, sizeof(dir), "layers/%s", chain_id + 7);
	if (mkdirat(l->stage, dir, 0700) < 0)
		return vs_err(err, errno, "mkdir `%s`", dir);
	strcat(dir, "/root");
	if (mkdirat(l->stage, dir, 0755) < 0)
		return vs_err(err, errno, "mkdir `%s`", dir);
	cleanup_close int root = openat(l->stage, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cleanup_close int blob = open_in(l, path, err);
	if (root < 0 || blob < 0)
		return root < 0 ? vs_err(err, errno, "open `%s`", dir) : -1;
	char what[256];
	snprintf(what, sizeof(what), "layer %s", d ? d->digest : path);
	struct layer_expect x = {
	    .blob_digest = d ? d->digest : NULL,
	    .blob_size = d ? d->size : -1,
	    .diff_id = diff_id,
	    .max_bytes = l->o->max_layer,
	};
	struct layer_result res;
	if (layer_unpack(blob, root, what, &x, &res, err) < 0)
		return -1;
	if (res.skipped_devices)
		vs_warn("%s: %u device nodes not made (the runtime makes /dev)", what,
			res.skipped_devices);
	json_object_set_new(row, "size", json_integer((json_int_t)res.tar_bytes));
	snprintf(dir, sizeof(dir), "layers/%s/layer.json", chain_id + 7);
	cleanup_free char *meta = json_dumps(row, JSON_SORT_KEYS);
	if (!meta || vs_write_file_at(l->stage, dir, meta, strlen(meta), err) < 0)
		return -1;
	return json_object_set_new(
	    l->staged, chain_id,
	    json_pack("{s:s, s:I}", "kind", "layer", "size", (json_int_t)res.tar_bytes));
}

static int add_image(struct load *l, const char *config_digest, const char *manifest_digest,
		     const struct image_config *c, json_t *layers, const char *name, vs_err_t *err)
{
	char loaded[32];
	time_t now = time(NULL);
	strftime(loaded, sizeof(loaded), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	json_t *names = json_array();
	if (name) {
		cleanup_free char *norm = image_name_normalize(name);
		if (!norm || json_array_append_new(names, json_string(norm)) < 0)
			return vs_err(err, ENOMEM, "load");
	}
	json_t *rec = json_pack("{s:s, s:s?, s:o, s:o, s:s?, s:s?, s:s}", "id", config_digest,
				"manifest", manifest_digest, "names", names, "layers", layers, "os",
				c->os, "architecture", c->arch, "loaded", loaded);
	if (!rec || json_array_append_new(l->images, rec) < 0)
		return vs_err(err, ENOMEM, "load");
	return 0;
}

static int load_config(struct load *l, const char *digest, const char *buf, size_t len,
		       struct image_config *c, size_t n_layers, vs_err_t *err)
{
	char what[128];
	snprintf(what, sizeof(what), "config %.19s", digest);
	if (image_config_parse(buf, len, what, c, err) < 0)
		return -1;
	if (c->n != n_layers) {
		image_config_free(c);
		return vs_err(err, 0, "%s: %zu diff_ids for %zu layers", what, c->n, n_layers);
	}
	return stage_blob(l, digest, buf, len, err);
}

static int load_oci_manifest(struct load *l, const struct descriptor *d, const char *ref,
			     vs_err_t *err)
{
	cleanup_free char *buf = NULL, *cbuf = NULL;
	size_t len, clen;
	if (read_blob(l, d->digest, d->size, &buf, &len, err) < 0)
		return -1;
	struct manifest m;
	char what[128];
	snprintf(what, sizeof(what), "manifest %.19s", d->digest);
	if (manifest_parse(buf, len, what, &m, err) < 0)
		return -1;
	struct image_config c = {0};
	json_t *layers = json_array();
	int rc = -1;
	if (!layers || read_blob(l, m.config.digest, m.config.size, &cbuf, &clen, err) < 0 ||
	    load_config(l, m.config.digest, cbuf, clen, &c, m.n_layers, err) < 0)
		goto out;
	if ((c.os && strcmp(c.os, "linux") != 0) || (c.arch && strcmp(c.arch, "amd64") != 0)) {
		vs_err(err, 0, "image %.19s is for %s/%s, not linux/amd64", m.config.digest,
		       c.os ? c.os : "?", c.arch ? c.arch : "?");
		goto out;
	}
	char chain[DIGEST_LEN + 1] = "";
	for (size_t i = 0; i < m.n_layers; i++) {
		char path[128];
		snprintf(path, sizeof(path), "blobs/sha256/%s", m.layers[i].digest + 7);
		chain_id_next(i ? chain : NULL, c.diff_ids[i], chain);
		if (unpack_layer(l, path, &m.layers[i], c.diff_ids[i], chain, layers, err) < 0)
			goto out;
	}
	if (stage_blob(l, d->digest, buf, len, err) < 0)
		goto out;
	rc = add_image(l, m.config.digest, d->digest, &c, steal_ptr(layers), ref, err);
out:
	json_decref(layers);
	image_config_free(&c);
	manifest_free(&m);
	return rc;
}

static int load_oci_index(struct load *l, const char *buf, size_t len, const char *what,
			  const char *ref, int depth, vs_err_t *err)
{
	if (depth > MAX_DEPTH)
		return vs_err(err, 0, "%s: indexes nested deeper than %d", what, MAX_DEPTH);
	struct index x;
	if (index_parse(buf, len, what, &x, err) < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < x.n && rc == 0; i++) {
		const struct descriptor *d = &x.manifests[i];
		const char *name = d->ref_name ? d->ref_name : ref;
		if (!descriptor_fits_host(d))
			continue;
		switch (media_kind_of(d->media_type)) {
		case MEDIA_INDEX: {
			cleanup_free char *sub = NULL;
			size_t slen;
			char swhat[128];
			snprintf(swhat, sizeof(swhat), "index %.19s", d->digest);
			rc = read_blob(l, d->digest, d->size, &sub, &slen, err);
			if (rc == 0)
				rc = load_oci_index(l, sub, slen, swhat, name, depth + 1, err);
			break;
		}
		case MEDIA_MANIFEST:
			rc = load_oci_manifest(l, d, name, err);
			break;
		default:
			vs_warn("%s: manifests[%zu]: media type `%s` skipped", what, i,
				d->media_type);
		}
	}
	index_free(&x);
	return rc;
}

static int load_oci(struct load *l, vs_err_t *err)
{
	cleanup_free char *layout = NULL, *buf = NULL;
	size_t len;
	if (read_path(l, "oci-layout", &layout, &len, err) < 0)
		return -1;
	json_t *j = vjson_load_buffer(layout, len, "oci-layout", err);
	const char *v = j ? json_string_value(json_object_get(j, "imageLayoutVersion")) : NULL;
	bool ok = v && strcmp(v, "1.0.0") == 0;
	json_decref(j);
	if (!ok)
		return j ? vs_err(err, 0, "oci-layout: imageLayoutVersion must be 1.0.0") : -1;
	if (read_path(l, "index.json", &buf, &len, err) < 0)
		return -1;
	return load_oci_index(l, buf, len, "index.json", NULL, 0, err);
}

static int load_docker(struct load *l, vs_err_t *err)
{
	cleanup_free char *buf = NULL;
	size_t len;
	if (read_path(l, "manifest.json", &buf, &len, err) < 0)
		return -1;
	struct docker_manifest dm;
	if (docker_manifest_parse(buf, len, "manifest.json", &dm, err) < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < dm.n && rc == 0; i++) {
		struct docker_image *di = &dm.images[i];
		cleanup_free char *cbuf = NULL;
		size_t clen;
		char digest[DIGEST_LEN + 1];
		struct image_config c = {0};
		rc = read_path(l, di->config, &cbuf, &clen, err);
		if (rc < 0)
			break;
		sha256_hex(cbuf, clen, digest);
		/* the config's file name is its digest (`HEX.json` or `blobs/sha256/HEX`) */
		const char *base = strrchr(di->config, '/');
		base = base ? base + 1 : di->config;
		if (strlen(base) >= 64 && strncmp(base, digest + 7, 64) != 0 &&
		    strspn(base, "0123456789abcdef") >= 64) {
			rc = vs_err(err, 0, "blob %s: digest mismatch: its content is %s",
				    di->config, digest);
			break;
		}
		rc = load_config(l, digest, cbuf, clen, &c, di->n_layers, err);
		if (rc < 0)
			break;
		json_t *layers = json_array();
		char chain[DIGEST_LEN + 1] = "";
		for (size_t k = 0; k < di->n_layers && rc == 0; k++) {
			chain_id_next(k ? chain : NULL, c.diff_ids[k], chain);
			rc =
			    unpack_layer(l, di->layers[k], NULL, c.diff_ids[k], chain, layers, err);
		}
		const char *tag = di->repo_tags && di->repo_tags[0] ? di->repo_tags[0] : NULL;
		if (rc == 0)
			rc = add_image(l, digest, NULL, &c, steal_ptr(layers), tag, err);
		json_decref(layers);
		/* further tags of the same image */
		for (size_t t = 1; rc == 0 && tag && di->repo_tags[t]; t++) {
			json_t *rec = json_array_get(l->images, json_array_size(l->images) - 1);
			cleanup_free char *norm = image_name_normalize(di->repo_tags[t]);
			json_array_append_new(json_object_get(rec, "names"), json_string(norm));
		}
		image_config_free(&c);
	}
	docker_manifest_free(&dm);
	return rc;
}

/* Takes names away from other images, as docker does when a tag moves. */
static int move_names(struct load *l, json_t *rec, vs_err_t *err)
{
	json_t *all = store_images(l->s, err);
	if (!all)
		return -1;
	const char *id = json_string_value(json_object_get(rec, "id"));
	size_t i, k;
	json_t *other, *n;
	int rc = 0;
	json_array_foreach(all, i, other)
	{
		const char *oid = json_string_value(json_object_get(other, "id"));
		json_t *onames = json_object_get(other, "names");
		bool changed = false;
		if (strcmp(oid, id) == 0) {
			/* the same image loaded again: keep its other names */
			json_array_foreach(
			    onames, k, n) if (!json_array_size(json_object_get(rec, "names")) ||
					      strcmp(json_string_value(n),
						     json_string_value(json_array_get(
							 json_object_get(rec, "names"), 0))) != 0)
			    json_array_append(json_object_get(rec, "names"), n);
			continue;
		}
		for (k = json_array_size(onames); k-- > 0;) {
			json_t *mine;
			size_t m;
			json_array_foreach(json_object_get(rec, "names"), m, mine)
			{
				if (json_equal(mine, json_array_get(onames, k))) {
					json_array_remove(onames, k);
					changed = true;
					break;
				}
			}
		}
		if (changed && (rc = store_write_image(l->s, other, err)) < 0)
			break;
	}
	json_decref(all);
	return rc;
}

static int commit(struct load *l, vs_err_t *err)
{
	const char *key;
	json_t *v;
	json_object_foreach(l->staged, key, v)
	{
		bool layer = strcmp(json_string_value(json_object_get(v, "kind")), "layer") == 0;
		char from[128], to[128];
		snprintf(from, sizeof(from), "%s/%s", layer ? "layers" : "blobs", key + 7);
		snprintf(to, sizeof(to), "%s/%s", layer ? "layers" : "blobs/sha256", key + 7);
		/* a layer another load put there meanwhile is the same content */
		if (renameat(l->stage, from, l->s->fd, to) < 0 && errno != EEXIST &&
		    errno != ENOTEMPTY)
			return vs_err(err, errno, "rename into `%s/%s`", l->s->path, to);
	}
	size_t i;
	json_t *rec;
	json_array_foreach(l->images, i, rec)
	{
		if (move_names(l, rec, err) < 0 || store_write_image(l->s, rec, err) < 0)
			return -1;
		json_t *names = json_object_get(rec, "names");
		const char *id = json_string_value(json_object_get(rec, "id"));
		if (json_array_size(names) == 0)
			printf("Loaded image: %s\n", id);
		for (size_t k = 0; k < json_array_size(names); k++)
			printf("Loaded image: %s %s\n", json_string_value(json_array_get(names, k)),
			       id);
	}
	return 0;
}

/* Under the exclusive lock no other load runs: anything in tmp/ is what a killed load
 * left behind. */
static void remove_stale_staging(struct store *s)
{
	int tmp = openat(s->fd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = tmp >= 0 ? fdopendir(tmp) : NULL;
	if (!d) {
		if (tmp >= 0)
			close(tmp);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!vs_str_has_prefix(de->d_name, "load-"))
			continue;
		vs_err_t ignored = NULL;
		if (vs_remove_tree(dirfd(d), de->d_name, &ignored) < 0)
			vs_warn("stale `%s/tmp/%s`: %s", s->path, de->d_name, ignored->msg);
		vs_err_free(&ignored);
	}
	closedir(d);
}

int image_load(struct store *s, const char *src, const struct load_opts *o, vs_err_t *err)
{
	struct load l = {.s = s, .o = o, .src = src, .in = -1, .stage = -1};
	cleanup_free char *stage = NULL;
	int rc = -1, srcfd = -1;
	remove_stale_staging(s);
	l.staged = json_object();
	l.images = json_array();
	if (!l.staged || !l.images || asprintf(&stage, "%s/tmp/load-XXXXXX", s->path) < 0) {
		vs_err(err, ENOMEM, "load");
		goto out_nostage;
	}
	if (!mkdtemp(stage)) {
		vs_err(err, errno, "mkdtemp `%s`", stage);
		goto out_nostage;
	}
	l.stage = open(stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l.stage < 0 || mkdirat(l.stage, "layers", 0700) < 0 ||
	    mkdirat(l.stage, "blobs", 0700) < 0) {
		vs_err(err, errno, "staging `%s`", stage);
		goto out;
	}
	struct stat st;
	srcfd = open(src, O_RDONLY | O_CLOEXEC);
	if (srcfd < 0 || fstat(srcfd, &st) < 0) {
		vs_err(err, errno, "open `%s`", src);
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		l.in = steal_fd(srcfd);
	} else {
		/* an archive of a layout: unpacked by the same safe reader as the layers */
		if (mkdirat(l.stage, "in", 0700) < 0 ||
		    (l.in = openat(l.stage, "in", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
			vs_err(err, errno, "staging `%s/in`", stage);
			goto out;
		}
		/* a plain tar never reaches the cap; a compressed one may unpack to its own
		 * size plus one layer's cap */
		uint64_t cap = (uint64_t)st.st_size + o->max_layer;
		struct layer_expect x = {.blob_size = -1,
					 .max_bytes = cap < o->max_layer ? UINT64_MAX : cap};
		struct layer_result res;
		char what[PATH_MAX + 16];
		snprintf(what, sizeof(what), "archive `%s`", src);
		if (layer_unpack(srcfd, l.in, what, &x, &res, err) < 0)
			goto out;
	}
	bool oci = faccessat(l.in, "index.json", F_OK, 0) == 0;
	bool docker = faccessat(l.in, "manifest.json", F_OK, 0) == 0;
	if (!oci && !docker) {
		vs_err(err, 0,
		       "%s: neither an OCI image layout (index.json) nor a docker-archive "
		       "(manifest.json)",
		       src);
		goto out;
	}
	if ((oci ? load_oci(&l, err) : load_docker(&l, err)) < 0)
		goto out;
	if (json_array_size(l.images) == 0) {
		vs_err(err, 0, "%s: no image for linux/amd64", src);
		goto out;
	}
	if (o->name) {
		if (json_array_size(l.images) != 1) {
			vs_err(err, 0, "--name: %s holds %zu images, not one", src,
			       json_array_size(l.images));
			goto out;
		}
		cleanup_free char *norm = image_name_normalize(o->name);
		json_t *names = json_array();
		json_array_append_new(names, json_string(norm));
		json_object_set_new(json_array_get(l.images, 0), "names", names);
	}
	rc = commit(&l, err);
out:
	if (srcfd >= 0)
		close(srcfd);
	if (l.in >= 0)
		close(l.in);
	if (l.stage >= 0)
		close(l.stage);
	{
		vs_err_t ignored = NULL;
		int tmp = openat(s->fd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (tmp >= 0 && vs_remove_tree(tmp, strrchr(stage, '/') + 1, &ignored) < 0)
			vs_warn("could not remove `%s`: %s", stage, ignored->msg);
		if (tmp >= 0)
			close(tmp);
		vs_err_free(&ignored);
	}
out_nostage:
	json_decref(l.staged);
	json_decref(l.images);
	return rc;
}
