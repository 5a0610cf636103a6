/* A layer blob read as its uncompressed tar stream: compression found by magic
 * (gzip, zstd, or none), both digests computed on the way, the declared blob size and
 * the stream cap enforced as bytes arrive. */
#ifndef VESSEL_IMAGE_LAYER_STREAM_H
#define VESSEL_IMAGE_LAYER_STREAM_H

#include <nettle/sha2.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <zlib.h>
#include <zstd.h>

#include "base/error.h"

enum layer_compression { LAYER_PLAIN, LAYER_GZIP, LAYER_ZSTD };

struct layer_stream {
	int fd;
	const char *what;
	int64_t blob_size;  /* declared, -1 unknown */
	uint64_t max_bytes; /* cap on the tar stream */
	enum layer_compression comp;
	struct sha256_ctx blob_sha, tar_sha;
	uint64_t blob_bytes, tar_bytes;
	unsigned char in[1 << 16];
	size_t in_pos, in_len;
	bool in_eof, frame_done;
	unsigned char out[1 << 17];
	z_stream z;
	bool z_ready;
	ZSTD_DStream *zs;
	vs_err_t error; /* the first failure, kept for the tar reader's caller */
};

int layer_stream_open(struct layer_stream *s, int fd, const char *what, int64_t blob_size,
		      uint64_t max_bytes, vs_err_t *err);
/* Next piece of the tar stream: its length (0 at the end), or -1 with s->error set. */
ssize_t layer_stream_read(struct layer_stream *s, const void **buf);
/* Reads what is left (tar padding), then checks the declared size: 0 or -1 with err. */
int layer_stream_finish(struct layer_stream *s, vs_err_t *err);
/* "sha256:<hex>" of the compressed blob and of the tar stream (after finish). */
void layer_stream_digests(struct layer_stream *s, char *blob, char *tar);
void layer_stream_close(struct layer_stream *s);

#endif
