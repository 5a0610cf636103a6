/* The image store (docs/images.md):
 *   STORE/lock                       flock: exclusive to change, shared to read
 *   STORE/blobs/sha256/HEX           manifests and configs, by digest
 *   STORE/layers/HEX/root/           an unpacked layer, by ChainID (shared by images)
 *   STORE/layers/HEX/layer.json      its diff_id, parent ChainID and tar size
 *   STORE/images/HEX.json            one image (HEX: its config digest): names, layers
 *   STORE/tmp/                       staging: a load works here and renames into place
 * Records are written to a temporary name and renamed, so readers never see half. */
#ifndef VESSEL_IMAGE_STORE_H
#define VESSEL_IMAGE_STORE_H

#include <jansson.h>
#include <stdbool.h>

#include "base/error.h"
#include "image/manifest.h"

#define DEFAULT_STORE "/var/lib/vessel"

struct store {
	char *path;
	int fd;
	int lock;
};

int store_open(struct store *s, const char *path, bool exclusive, vs_err_t *err);
void store_close(struct store *s);

/* Every image record, as an array (caller decrefs). */
json_t *store_images(struct store *s, vs_err_t *err);
/* The record whose name, full id or id prefix (>= 4 hex digits) is ref; *matched_name
 * says whether ref was a name. NULL with err when none or ambiguous. */
json_t *store_find(struct store *s, const char *ref, bool *matched_name, vs_err_t *err);
int store_write_image(struct store *s, json_t *rec, vs_err_t *err);
int store_delete_image(struct store *s, const char *id, vs_err_t *err);
/* Removes layers and blobs no record references and no mount uses. */
int store_gc(struct store *s, unsigned *layers, unsigned *blobs, vs_err_t *err);
bool store_has_layer(struct store *s, const char *chain_id);
/* "STORE/layers/HEX/root" for a ChainID. */
char *store_layer_root(struct store *s, const char *chain_id);

/* ChainID(n) = sha256(ChainID(n-1) + " " + DiffID(n)); ChainID(0) = DiffID(0). */
void chain_id_next(const char *parent, const char *diff_id, char *out);

/* "repo:tag": adds ":latest" to a name without a tag. */
char *image_name_normalize(const char *name);

#endif
