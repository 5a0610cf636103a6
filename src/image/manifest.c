#include "image/manifest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/util.h"

#define MAX_ENTRIES 4096

bool digest_valid(const char *d)
{
	if (!d || strncmp(d, "sha256:", 7) != 0 || strlen(d) != DIGEST_LEN)
		return false;
	for (const char *p = d + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

static const struct {
	const char *type;
	enum media_kind kind;
} media_types[] = {
    {"application/vnd.oci.image.index.v1+json", MEDIA_INDEX},
    {"application/vnd.docker.distribution.manifest.list.v2+json", MEDIA_INDEX},
    {"application/vnd.oci.image.manifest.v1+json", MEDIA_MANIFEST},
    {"application/vnd.docker.distribution.manifest.v2+json", MEDIA_MANIFEST},
    {"application/vnd.oci.image.config.v1+json", MEDIA_CONFIG},
    {"application/vnd.docker.container.image.v1+json", MEDIA_CONFIG},
    {"application/vnd.oci.image.layer.v1.tar", MEDIA_LAYER},
    {"application/vnd.oci.image.layer.v1.tar+gzip", MEDIA_LAYER},
    {"application/vnd.oci.image.layer.v1.tar+zstd", MEDIA_LAYER},
    {"application/vnd.oci.image.layer.nondistributable.v1.tar", MEDIA_LAYER},
    {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", MEDIA_LAYER},
    {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", MEDIA_LAYER},
    {"application/vnd.docker.image.rootfs.diff.tar", MEDIA_LAYER},
    {"application/vnd.docker.image.rootfs.diff.tar.gzip", MEDIA_LAYER},
    {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", MEDIA_LAYER},
};

enum media_kind media_kind_of(const char *media_type)
{
	for (size_t i = 0; media_type && i < ARRAY_SIZE(media_types); i++)
		if (strcmp(media_types[i].type, media_type) == 0)
			return media_types[i].kind;
	return MEDIA_OTHER;
}

bool archive_path_safe(const char *p)
{
	if (!p || !*p || p[0] == '/' || strlen(p) > 4096)
		return false;
	for (const char *c = p; *c;) {
		const char *end = strchr(c, '/');
		size_t n = end ? (size_t)(end - c) : strlen(c);
		if (n == 2 && c[0] == '.' && c[1] == '.')
			return false;
		c += n;
		while (*c == '/')
			c++;
	}
	return true;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void descriptor_free(struct descriptor *d)
{
	free(d->media_type);
	free(d->ref_name);
	free(d->os);
	free(d->arch);
	free(d->variant);
	memset(d, 0, sizeof(*d));
}

static int descriptor_parse(json_t *obj, const char *path, struct descriptor *d, vs_err_t *err)
{
	const char *mt = NULL, *digest = NULL, *ref = NULL, *os = NULL, *arch = NULL,
		   *variant = NULL;
	json_t *platform = NULL, *ann = NULL;
	if (!json_is_object(obj))
		return vs_err(err, 0, "%s: must be an object", path);
	if (vjson_require(vjson_string(obj, path, "mediaType", &mt, err), path, "mediaType",
			  "a string", err) < 0 ||
	    vjson_require(vjson_string(obj, path, "digest", &digest, err), path, "digest",
			  "a string", err) < 0 ||
	    vjson_require(vjson_int_range(obj, path, "size", 0, INT64_MAX, &d->size, err), path,
			  "size", "an integer", err) < 0 ||
	    vjson_object(obj, path, "platform", &platform, err) < 0 ||
	    vjson_object(obj, path, "annotations", &ann, err) < 0)
		return -1;
	if (!digest_valid(digest))
		return vs_err(err, 0, "%s.digest: `%s` is not a sha256 digest", path, digest);
	cleanup_free char *ppath = vjson_join(path, "platform");
	cleanup_free char *apath = vjson_join(path, "annotations");
	if (!ppath || !apath)
		return vs_err(err, ENOMEM, "%s", path);
	if (platform && (vjson_string(platform, ppath, "os", &os, err) < 0 ||
			 vjson_string(platform, ppath, "architecture", &arch, err) < 0 ||
			 vjson_string(platform, ppath, "variant", &variant, err) < 0))
		return -1;
	if (ann && vjson_string(ann, apath, "org.opencontainers.image.ref.name", &ref, err) < 0)
		return -1;
	strcpy(d->digest, digest);
	d->media_type = strdup(mt);
	d->ref_name = dup_or_null(ref);
	d->os = dup_or_null(os);
	d->arch = dup_or_null(arch);
	d->variant = dup_or_null(variant);
	if (!d->media_type || (ref && !d->ref_name) || (os && !d->os) || (arch && !d->arch) ||
	    (variant && !d->variant)) {
		descriptor_free(d);
		return vs_err(err, ENOMEM, "%s", path);
	}
	return 0;
}

static int descriptors_parse(json_t *arr, const char *path, struct descriptor **out, size_t *n,
			     vs_err_t *err)
{
	size_t len = json_array_size(arr);
	if (len > MAX_ENTRIES)
		return vs_err(err, 0, "%s: more than %d entries", path, MAX_ENTRIES);
	struct descriptor *v = calloc(len ? len : 1, sizeof(*v));
	if (!v)
		return vs_err(err, ENOMEM, "%s", path);
	for (size_t i = 0; i < len; i++) {
		cleanup_free char *ipath = vjson_index(path, i);
		if (!ipath || descriptor_parse(json_array_get(arr, i), ipath, &v[i], err) < 0) {
			if (!ipath)
				vs_err(err, ENOMEM, "%s", path);
			for (size_t j = 0; j < i; j++)
				descriptor_free(&v[j]);
			free(v);
			return -1;
		}
	}
	*out = v;
	*n = len;
	return 0;
}

static json_t *load_object(const char *buf, size_t len, const char *what, vs_err_t *err)
{
	json_t *j = vjson_load_buffer(buf, len, what, err);
	if (j && !json_is_object(j)) {
		json_decref(j);
		vs_err(err, 0, "%s: must be a JSON object", what);
		return NULL;
	}
	return j;
}

int index_parse(const char *buf, size_t len, const char *what, struct index *out, vs_err_t *err)
{
	memset(out, 0, sizeof(*out));
	json_t *j = load_object(buf, len, what, err);
	if (!j)
		return -1;
	json_t *arr = NULL;
	int64_t version = 0;
	int rc = -1;
	cleanup_free char *mpath = vjson_join(what, "manifests");
	if (vjson_require(vjson_int64(j, what, "schemaVersion", &version, err), what,
			  "schemaVersion", "an integer", err) < 0 ||
	    vjson_require(vjson_array(j, what, "manifests", &arr, err), what, "manifests",
			  "an array", err) < 0)
		goto out;
	if (version != 2) {
		vs_err(err, 0, "%s.schemaVersion: must be 2, not %lld", what, (long long)version);
		goto out;
	}
	if (!mpath) {
		vs_err(err, ENOMEM, "%s", what);
		goto out;
	}
	rc = descriptors_parse(arr, mpath, &out->manifests, &out->n, err);
out:
	json_decref(j);
	return rc;
}

void index_free(struct index *x)
{
	for (size_t i = 0; i < x->n; i++)
		descriptor_free(&x->manifests[i]);
	free(x->manifests);
	memset(x, 0, sizeof(*x));
}

int manifest_parse(const char *buf, size_t len, const char *what, struct manifest *out,
		   vs_err_t *err)
{
	memset(out, 0, sizeof(*out));
	json_t *j = load_object(buf, len, what, err);
	if (!j)
		return -1;
	json_t *config = NULL, *layers = NULL;
	int64_t version = 0;
	int rc = -1;
	cleanup_free char *cpath = vjson_join(what, "config");
	cleanup_free char *lpath = vjson_join(what, "layers");
	if (!cpath || !lpath) {
		vs_err(err, ENOMEM, "%s", what);
		goto out;
	}
	if (vjson_require(vjson_int64(j, what, "schemaVersion", &version, err), what,
			  "schemaVersion", "an integer", err) < 0 ||
	    vjson_require(vjson_object(j, what, "config", &config, err), what, "config",
			  "an object", err) < 0 ||
	    vjson_require(vjson_array(j, what, "layers", &layers, err), what, "layers", "an array",
			  err) < 0)
		goto out;
	if (version != 2) {
		vs_err(err, 0, "%s.schemaVersion: must be 2, not %lld", what, (long long)version);
		goto out;
	}
	if (descriptor_parse(config, cpath, &out->config, err) < 0)
		goto out;
	if (media_kind_of(out->config.media_type) != MEDIA_CONFIG) {
		vs_err(err, 0, "%s.mediaType: `%s` is not an image config type", cpath,
		       out->config.media_type);
		goto out;
	}
	if (descriptors_parse(layers, lpath, &out->layers, &out->n_layers, err) < 0)
		goto out;
	for (size_t i = 0; i < out->n_layers; i++) {
		if (media_kind_of(out->layers[i].media_type) != MEDIA_LAYER) {
			vs_err(err, 0, "%s[%zu].mediaType: `%s` is not a layer type vessel reads",
			       lpath, i, out->layers[i].media_type);
			goto out;
		}
	}
	rc = 0;
out:
	json_decref(j);
	if (rc < 0)
		manifest_free(out);
	return rc;
}

void manifest_free(struct manifest *m)
{
	descriptor_free(&m->config);
	for (size_t i = 0; i < m->n_layers; i++)
		descriptor_free(&m->layers[i]);
	free(m->layers);
	memset(m, 0, sizeof(*m));
}

int image_config_parse(const char *buf, size_t len, const char *what, struct image_config *out,
		       vs_err_t *err)
{
	memset(out, 0, sizeof(*out));
	json_t *j = load_object(buf, len, what, err);
	if (!j)
		return -1;
	json_t *rootfs = NULL;
	const char *type = NULL, *os = NULL, *arch = NULL;
	int rc = -1;
	cleanup_free char *rpath = vjson_join(what, "rootfs");
	if (!rpath) {
		vs_err(err, ENOMEM, "%s", what);
		goto out;
	}
	if (vjson_require(vjson_object(j, what, "rootfs", &rootfs, err), what, "rootfs",
			  "an object", err) < 0 ||
	    vjson_require(vjson_string(rootfs, rpath, "type", &type, err), rpath, "type",
			  "a string", err) < 0 ||
	    vjson_string(j, what, "os", &os, err) < 0 ||
	    vjson_string(j, what, "architecture", &arch, err) < 0)
		goto out;
	if (strcmp(type, "layers") != 0) {
		vs_err(err, 0, "%s.type: must be `layers`, not `%s`", rpath, type);
		goto out;
	}
	if (vjson_strv(rootfs, rpath, "diff_ids", false, &out->diff_ids, &out->n, err) < 0)
		goto out;
	if (!out->diff_ids) {
		vs_err(err, 0, "%s.diff_ids: is required", rpath);
		goto out;
	}
	if (out->n > MAX_ENTRIES) {
		vs_err(err, 0, "%s.diff_ids: more than %d layers", rpath, MAX_ENTRIES);
		goto out;
	}
	for (size_t i = 0; i < out->n; i++) {
		if (!digest_valid(out->diff_ids[i])) {
			vs_err(err, 0, "%s.diff_ids[%zu]: `%s` is not a sha256 digest", rpath, i,
			       out->diff_ids[i]);
			goto out;
		}
	}
	out->os = dup_or_null(os);
	out->arch = dup_or_null(arch);
	if ((os && !out->os) || (arch && !out->arch)) {
		vs_err(err, ENOMEM, "%s", what);
		goto out;
	}
	rc = 0;
out:
	json_decref(j);
	if (rc < 0)
		image_config_free(out);
	return rc;
}

void image_config_free(struct image_config *c)
{
	vjson_strv_free(c->diff_ids);
	free(c->os);
	free(c->arch);
	memset(c, 0, sizeof(*c));
}

static void docker_image_free(struct docker_image *d)
{
	free(d->config);
	vjson_strv_free(d->repo_tags);
	vjson_strv_free(d->layers);
}

int docker_manifest_parse(const char *buf, size_t len, const char *what,
			  struct docker_manifest *out, vs_err_t *err)
{
	memset(out, 0, sizeof(*out));
	json_t *j = vjson_load_buffer(buf, len, what, err);
	if (!j)
		return -1;
	int rc = -1;
	if (!json_is_array(j) || json_array_size(j) == 0 || json_array_size(j) > MAX_ENTRIES) {
		vs_err(err, 0, "%s: must be a non-empty array of images", what);
		goto out;
	}
	out->images = calloc(json_array_size(j), sizeof(*out->images));
	if (!out->images) {
		vs_err(err, ENOMEM, "%s", what);
		goto out;
	}
	for (size_t i = 0; i < json_array_size(j); i++) {
		json_t *o = json_array_get(j, i);
		struct docker_image *d = &out->images[i];
		out->n = i + 1;
		const char *config = NULL;
		cleanup_free char *ipath = vjson_index(what, i);
		if (!ipath) {
			vs_err(err, ENOMEM, "%s", what);
			goto out;
		}
		if (!json_is_object(o)) {
			vs_err(err, 0, "%s: must be an object", ipath);
			goto out;
		}
		if (vjson_require(vjson_string(o, ipath, "Config", &config, err), ipath, "Config",
				  "a string", err) < 0 ||
		    vjson_strv(o, ipath, "RepoTags", false, &d->repo_tags, NULL, err) < 0 ||
		    vjson_strv(o, ipath, "Layers", false, &d->layers, &d->n_layers, err) < 0)
			goto out;
		if (!d->layers) {
			vs_err(err, 0, "%s.Layers: is required", ipath);
			goto out;
		}
		if (!archive_path_safe(config)) {
			vs_err(err, 0, "%s.Config: `%s` leaves the archive", ipath, config);
			goto out;
		}
		for (size_t k = 0; k < d->n_layers; k++) {
			if (!archive_path_safe(d->layers[k])) {
				vs_err(err, 0, "%s.Layers[%zu]: `%s` leaves the archive", ipath, k,
				       d->layers[k]);
				goto out;
			}
		}
		d->config = strdup(config);
		if (!d->config) {
			vs_err(err, ENOMEM, "%s", what);
			goto out;
		}
	}
	rc = 0;
out:
	json_decref(j);
	if (rc < 0)
		docker_manifest_free(out);
	return rc;
}

void docker_manifest_free(struct docker_manifest *m)
{
	for (size_t i = 0; i < m->n; i++)
		docker_image_free(&m->images[i]);
	free(m->images);
	memset(m, 0, sizeof(*m));
}

bool descriptor_fits_host(const struct descriptor *d)
{
	if (d->os && strcmp(d->os, "linux") != 0)
		return false;
	if (d->arch && strcmp(d->arch, "amd64") != 0)
		return false;
	return true;
}
