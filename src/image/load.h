/* `vessel image load`: an OCI image layout or a docker-archive (a directory or a tar
 * of one) into the store. Everything is staged in STORE/tmp and renamed into place
 * only when every blob and layer checked out, so a failed load leaves the store as it
 * was. */
#ifndef VESSEL_IMAGE_LOAD_H
#define VESSEL_IMAGE_LOAD_H

#include <stdint.h>

#include "base/error.h"
#include "image/store.h"

struct load_opts {
	const char *name;   /* NULL: the archive's own names */
	uint64_t max_layer; /* cap on one layer's uncompressed size */
};

/* Prints one "Loaded image: NAME ID" line per image. */
int image_load(struct store *s, const char *src, const struct load_opts *o, vs_err_t *err);

#endif
