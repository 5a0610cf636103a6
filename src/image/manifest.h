/* The JSON documents of an image, parsed from untrusted bytes (fuzzed:
 * tests/fuzz/fuzz_image_manifest.c): OCI index and manifest, Docker v2 schema 2
 * manifest and list, the image config's rootfs, docker-archive's manifest.json.
 * Pure: no I/O, every value checked once; the rest of image/ trusts the result. */
#ifndef VESSEL_IMAGE_MANIFEST_H
#define VESSEL_IMAGE_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* "sha256:" + 64 lowercase hex digits: the only algorithm vessel stores. */
#define DIGEST_LEN (7 + 64)
bool digest_valid(const char *d);

enum media_kind { MEDIA_OTHER, MEDIA_INDEX, MEDIA_MANIFEST, MEDIA_CONFIG, MEDIA_LAYER };
enum media_kind media_kind_of(const char *media_type);

struct descriptor {
	char *media_type;
	char digest[DIGEST_LEN + 1];
	int64_t size;
	char *ref_name;		   /* org.opencontainers.image.ref.name, or NULL */
	char *os, *arch, *variant; /* platform, NULL when absent */
};

struct index {
	struct descriptor *manifests;
	size_t n;
};

struct manifest {
	struct descriptor config;
	struct descriptor *layers;
	size_t n_layers;
};

struct image_config {
	char **diff_ids; /* NULL-terminated, digest_valid each */
	size_t n;
	char *os, *arch;
};

/* One entry of docker-archive's manifest.json. */
struct docker_image {
	char *config;	  /* a path inside the archive */
	char **repo_tags; /* NULL-terminated, may be empty */
	char **layers;	  /* paths inside the archive */
	size_t n_layers;
};

struct docker_manifest {
	struct docker_image *images;
	size_t n;
};

/* what names the document in errors (`index.json`, `blob sha256:...`). */
int index_parse(const char *buf, size_t len, const char *what, struct index *out, vs_err_t *err);
void index_free(struct index *x);
int manifest_parse(const char *buf, size_t len, const char *what, struct manifest *out,
		   vs_err_t *err);
void manifest_free(struct manifest *m);
int image_config_parse(const char *buf, size_t len, const char *what, struct image_config *out,
		       vs_err_t *err);
void image_config_free(struct image_config *c);
int docker_manifest_parse(const char *buf, size_t len, const char *what,
			  struct docker_manifest *out, vs_err_t *err);
void docker_manifest_free(struct docker_manifest *m);

/* Does a descriptor's platform (absent: any) fit this host (linux/amd64)? */
bool descriptor_fits_host(const struct descriptor *d);

/* A path inside an archive or layout that stays inside it: relative, no `..`. */
bool archive_path_safe(const char *p);

#endif
