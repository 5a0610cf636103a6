/* One layer blob -> one directory: decompression (gzip or zstd by magic, or none),
 * the blob digest and the diff_id (sha256 of the tar stream) checked, and the tar
 * unpacked so that nothing lands outside the directory (fuzzed:
 * tests/fuzz/fuzz_image_layer.c). Whiteouts become overlayfs whiteouts. */
#ifndef VESSEL_IMAGE_LAYER_H
#define VESSEL_IMAGE_LAYER_H

#include <stdint.h>

#include "base/error.h"
#include "image/manifest.h"

struct layer_expect {
	const char *blob_digest; /* NULL: not checked (docker-archive knows none) */
	int64_t blob_size;	 /* -1: not checked */
	const char *diff_id;	 /* NULL: not checked */
	uint64_t max_bytes;	 /* cap on the uncompressed tar stream and on declared sizes */
};

struct layer_result {
	char blob_digest[DIGEST_LEN + 1];
	char diff_id[DIGEST_LEN + 1];
	uint64_t tar_bytes; /* the uncompressed stream */
	unsigned skipped_devices;
};

/* Reads the blob from blobfd to its end and unpacks it into the directory rootfd (which
 * should be empty). what names the blob in errors. On failure rootfd holds a partial
 * tree the caller removes. */
int layer_unpack(int blobfd, int rootfd, const char *what, const struct layer_expect *x,
		 struct layer_result *res, vs_err_t *err);

#endif
