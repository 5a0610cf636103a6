#include "image/layer_stream.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static ssize_t fail(struct layer_stream *s, int errnum, const char *fmt, const char *detail)
{
	if (!s->error)
		vs_err(&s->error, errnum, fmt, s->what, detail ? detail : "");
	return -1;
}

/* Refills the input buffer when it is used up; false at the blob's end or on error. */
static int fill(struct layer_stream *s)
{
	if (s->in_pos < s->in_len)
		return 1;
	if (s->in_eof)
		return 0;
	ssize_t n;
	do
		n = read(s->fd, s->in, sizeof(s->in));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return (int)fail(s, errno, "%s: read%s", NULL);
	if (n == 0) {
		s->in_eof = true;
		return 0;
	}
	s->blob_bytes += (uint64_t)n;
	if (s->blob_size >= 0 && s->blob_bytes > (uint64_t)s->blob_size)
		return (int)fail(s, 0, "%s: blob is larger than its descriptor's size%s", NULL);
	sha256_update(&s->blob_sha, (size_t)n, s->in);
	s->in_pos = 0;
	s->in_len = (size_t)n;
	return 1;
}

int layer_stream_open(struct layer_stream *s, int fd, const char *what, int64_t blob_size,
		      uint64_t max_bytes, vs_err_t *err)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->what = what;
	s->blob_size = blob_size;
	s->max_bytes = max_bytes;
	sha256_init(&s->blob_sha);
	sha256_init(&s->tar_sha);
	/* the magic is in the first bytes: read until there are four or the blob ends */
	while (s->in_len < 4 && !s->in_eof) {
		ssize_t n = read(fd, s->in + s->in_len, sizeof(s->in) - s->in_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return vs_err(err, errno, "%s: read", what);
		if (n == 0)
			s->in_eof = true;
		s->in_len += (size_t)n;
	}
	s->blob_bytes = s->in_len;
	if (blob_size >= 0 && s->blob_bytes > (uint64_t)blob_size)
		return vs_err(err, 0, "%s: blob is larger than its descriptor's size", what);
	sha256_update(&s->blob_sha, s->in_len, s->in);
	static const unsigned char gz[] = {0x1f, 0x8b}, zst[] = {0x28, 0xb5, 0x2f, 0xfd};
	if (s->in_len >= 2 && memcmp(s->in, gz, 2) == 0) {
		s->comp = LAYER_GZIP;
		/* 16 + MAX_WBITS: a gzip wrapper, not zlib's */
		if (inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK)
			return vs_err(err, ENOMEM, "%s: zlib", what);
		s->z_ready = true;
	} else if (s->in_len >= 4 && memcmp(s->in, zst, 4) == 0) {
		s->comp = LAYER_ZSTD;
		s->zs = ZSTD_createDStream();
		if (!s->zs || ZSTD_isError(ZSTD_initDStream(s->zs)))
			return vs_err(err, ENOMEM, "%s: zstd", what);
	} else {
		s->comp = LAYER_PLAIN;
	}
	return 0;
}

static ssize_t produced(struct layer_stream *s, const void *buf, size_t n)
{
	s->tar_bytes += n;
	if (s->tar_bytes > s->max_bytes) {
		char cap[32];
		snprintf(cap, sizeof(cap), "%llu", (unsigned long long)s->max_bytes);
		return fail(s, 0,
			    "%s: uncompressed layer exceeds the cap of %s bytes (a decompression "
			    "bomb? raise --max-layer-size)",
			    cap);
	}
	sha256_update(&s->tar_sha, n, buf);
	return (ssize_t)n;
}

static ssize_t read_gzip(struct layer_stream *s, const void **buf)
{
	for (;;) {
		int more = fill(s);
		if (more < 0)
			return -1;
		if (!more) {
			if (s->frame_done)
				return 0;
			return fail(s, 0, "%s: gzip stream is truncated%s", NULL);
		}
		if (s->frame_done) {
			/* another gzip member follows (multi-member files are valid gzip) */
			if (inflateReset(&s->z) != Z_OK)
				return fail(s, 0, "%s: zlib reset%s", NULL);
			s->frame_done = false;
		}
		s->z.next_in = s->in + s->in_pos;
		s->z.avail_in = (uInt)(s->in_len - s->in_pos);
		s->z.next_out = s->out;
		s->z.avail_out = sizeof(s->out);
		int rc = inflate(&s->z, Z_NO_FLUSH);
		s->in_pos = s->in_len - s->z.avail_in;
		if (rc == Z_STREAM_END)
			s->frame_done = true;
		else if (rc != Z_OK && rc != Z_BUF_ERROR)
			return fail(s, 0, "%s: corrupt gzip data: %s", s->z.msg ? s->z.msg : "?");
		size_t n = sizeof(s->out) - s->z.avail_out;
		if (n) {
			*buf = s->out;
			return produced(s, s->out, n);
		}
	}
}

static ssize_t read_zstd(struct layer_stream *s, const void **buf)
{
	for (;;) {
		int more = fill(s);
		if (more < 0)
			return -1;
		if (!more) {
			if (s->frame_done)
				return 0;
			return fail(s, 0, "%s: zstd stream is truncated%s", NULL);
		}
		ZSTD_inBuffer in = {s->in, s->in_len, s->in_pos};
		ZSTD_outBuffer out = {s->out, sizeof(s->out), 0};
		size_t rc = ZSTD_decompressStream(s->zs, &out, &in);
		s->in_pos = in.pos;
		if (ZSTD_isError(rc))
			return fail(s, 0, "%s: corrupt zstd data: %s", ZSTD_getErrorName(rc));
		s->frame_done = rc == 0;
		if (out.pos) {
			*buf = s->out;
			return produced(s, s->out, out.pos);
		}
	}
}

ssize_t layer_stream_read(struct layer_stream *s, const void **buf)
{
	if (s->error)
		return -1;
	switch (s->comp) {
	case LAYER_GZIP:
		return read_gzip(s, buf);
	case LAYER_ZSTD:
		return read_zstd(s, buf);
	case LAYER_PLAIN:
		break;
	}
	int more = fill(s);
	if (more <= 0)
		return more;
	*buf = s->in + s->in_pos;
	size_t n = s->in_len - s->in_pos;
	s->in_pos = s->in_len;
	return produced(s, *buf, n);
}

int layer_stream_finish(struct layer_stream *s, vs_err_t *err)
{
	const void *buf;
	ssize_t n;
	while ((n = layer_stream_read(s, &buf)) > 0)
		;
	if (n < 0) {
		*err = s->error;
		s->error = NULL;
		return -1;
	}
	if (s->blob_size >= 0 && s->blob_bytes != (uint64_t)s->blob_size)
		return vs_err(err, 0,
			      "%s: blob has %llu bytes, its descriptor says %lld (truncated?)",
			      s->what, (unsigned long long)s->blob_bytes, (long long)s->blob_size);
	return 0;
}

static void hex_digest(struct sha256_ctx *c, char *out)
{
	uint8_t d[SHA256_DIGEST_SIZE];
	sha256_digest(c, sizeof(d), d);
	strcpy(out, "sha256:");
	for (size_t i = 0; i < sizeof(d); i++)
		sprintf(out + 7 + 2 * i, "%02x", d[i]);
}

void layer_stream_digests(struct layer_stream *s, char *blob, char *tar)
{
	hex_digest(&s->blob_sha, blob);
	hex_digest(&s->tar_sha, tar);
}

void layer_stream_close(struct layer_stream *s)
{
	if (s->z_ready)
		inflateEnd(&s->z);
	if (s->zs)
		ZSTD_freeDStream(s->zs);
	vs_err_free(&s->error);
	s->z_ready = false;
	s->zs = NULL;
}
