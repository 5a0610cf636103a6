/* Frames of the agent protocol: 8-byte header (type, three zero bytes, little-endian
 * payload length), then the payload. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "vmc/proto.h"

static const char *const type_names[] = {
    [VMC_CONFIG] = "CONFIG", [VMC_CREATED] = "CREATED", [VMC_START] = "START",
    [VMC_KILL] = "KILL",     [VMC_STDIN] = "STDIN",	[VMC_STDOUT] = "STDOUT",
    [VMC_STDERR] = "STDERR", [VMC_EXIT] = "EXIT",	[VMC_OK] = "OK",
    [VMC_ERROR] = "ERROR",   [VMC_EXEC] = "EXEC",	[VMC_FILE] = "FILE",
    [VMC_OCI] = "OCI",	     [VMC_OUTPUT] = "OUTPUT",	[VMC_RESIZE] = "RESIZE",
};

const char *vmc_type_name(uint8_t type)
{
	return type >= 1 && type <= VMC_TYPE_MAX ? type_names[type] : "unknown";
}

/* the payload size a type must have, or -1 for any */
static long fixed_len(uint8_t type)
{
	switch (type) {
	case VMC_CREATED:
	case VMC_START:
	case VMC_OK:
		return 0;
	case VMC_KILL:
	case VMC_EXIT:
		return 4;
	case VMC_RESIZE:
		return VMC_RESIZE_SIZE;
	default:
		return -1;
	}
}

int vmc_frame_parse(const uint8_t *buf, size_t n, struct vmc_frame *f, size_t *used, vs_err_t *err)
{
	if (n < VMC_HEADER_SIZE)
		return 0;
	uint8_t type = buf[0];
	if (type < 1 || type > VMC_TYPE_MAX)
		return vs_err(err, 0, "agent protocol: unknown frame type %u", type);
	if (buf[1] || buf[2] || buf[3])
		return vs_err(err, 0, "agent protocol: %s frame with reserved bytes set",
			      vmc_type_name(type));
	uint32_t len = (uint32_t)buf[4] | (uint32_t)buf[5] << 8 | (uint32_t)buf[6] << 16 |
		       (uint32_t)buf[7] << 24;
	if (len > VMC_MAX_PAYLOAD)
		return vs_err(err, 0, "agent protocol: %s frame of %u bytes (at most %u)",
			      vmc_type_name(type), len, VMC_MAX_PAYLOAD);
	long want = fixed_len(type);
	if (want >= 0 && len != (uint32_t)want)
		return vs_err(err, 0, "agent protocol: %s frame of %u bytes (must be %ld)",
			      vmc_type_name(type), len, want);
	if (n - VMC_HEADER_SIZE < len)
		return 0;
	*f = (struct vmc_frame){type, len, buf + VMC_HEADER_SIZE};
	*used = VMC_HEADER_SIZE + (size_t)len;
	return 1;
}

void vmc_frame_header(uint8_t hdr[VMC_HEADER_SIZE], uint8_t type, uint32_t len)
{
	hdr[0] = type;
	hdr[1] = hdr[2] = hdr[3] = 0;
	for (int i = 0; i < 4; i++)
		hdr[4 + i] = (uint8_t)(len >> (8 * i));
}

uint32_t vmc_frame_u32(const struct vmc_frame *f)
{
	const uint8_t *p = f->payload;
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int vmc_frame_signal(const struct vmc_frame *f, int *sig, vs_err_t *err)
{
	uint32_t v = vmc_frame_u32(f);
	if (v < 1 || v > VMC_MAX_SIGNAL)
		return vs_err(err, 0, "agent protocol: KILL of signal %u (must be 1..%d)", v,
			      VMC_MAX_SIGNAL);
	*sig = (int)v;
	return 0;
}

int vmc_agent_accepts(enum vmc_stream s, uint8_t type, bool terminal, vs_err_t *err)
{
	const char *where = s == VMC_STREAM_EXEC ? "an exec's connection" : "the main connection";
	switch (type) {
	case VMC_STDIN:
		return 0;
	case VMC_KILL:
		if (s == VMC_STREAM_EXEC)
			return 0;
		break;
	case VMC_RESIZE:
		if (terminal)
			return 0;
		return vs_err(err, 0,
			      "agent protocol: RESIZE from the host on %s, whose process has no "
			      "terminal",
			      where);
	default:
		break;
	}
	return vs_err(err, 0, "agent protocol: %s from the host on %s", vmc_type_name(type), where);
}

void vmc_resize_payload(uint8_t p[VMC_RESIZE_SIZE], uint16_t rows, uint16_t cols)
{
	p[0] = (uint8_t)rows;
	p[1] = (uint8_t)(rows >> 8);
	p[2] = (uint8_t)cols;
	p[3] = (uint8_t)(cols >> 8);
}

void vmc_frame_resize(const struct vmc_frame *f, uint16_t *rows, uint16_t *cols)
{
	const uint8_t *p = f->payload;
	*rows = (uint16_t)(p[0] | p[1] << 8);
	*cols = (uint16_t)(p[2] | p[3] << 8);
}

int vmc_reader_ready(const struct vmc_reader *r)
{
	struct vmc_frame f;
	size_t used;
	vs_err_t e = NULL;
	/* a bad frame is "ready" too: the next read reports it */
	int rc = vmc_frame_parse(r->buf + r->consumed, r->have - r->consumed, &f, &used, &e);
	vs_err_free(&e);
	return rc != 0;
}

int vmc_read_frame(int fd, struct vmc_reader *r, struct vmc_frame *f, vs_err_t *err)
{
	/* the previous frame's bytes go now that its caller is done with them */
	if (r->consumed) {
		memmove(r->buf, r->buf + r->consumed, r->have - r->consumed);
		r->have -= r->consumed;
		r->consumed = 0;
	}
	for (;;) {
		size_t used;
		int rc = vmc_frame_parse(r->buf, r->have, f, &used, err);
		if (rc < 0)
			return -1;
		if (rc > 0) {
			r->consumed = used;
			return 1;
		}
		if (r->cap - r->have < 4096) {
			size_t cap = r->cap ? r->cap * 2 : 65536;
			if (cap > VMC_HEADER_SIZE + VMC_MAX_PAYLOAD + 4096)
				cap = VMC_HEADER_SIZE + VMC_MAX_PAYLOAD + 4096;
			uint8_t *b = realloc(r->buf, cap);
			if (!b)
				return vs_err(err, ENOMEM, "agent protocol: read buffer");
			r->buf = b;
			r->cap = cap;
		}
		ssize_t got = read(fd, r->buf + r->have, r->cap - r->have);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return vs_err(err, errno, "agent protocol: read");
		if (got == 0) {
			if (r->have == 0)
				return 0;
			return vs_err(err, 0, "agent protocol: the stream ended inside a frame");
		}
		r->have += (size_t)got;
	}
}

void vmc_reader_free(struct vmc_reader *r)
{
	free(r->buf);
	memset(r, 0, sizeof(*r));
}

int vmc_send(int fd, uint8_t type, const void *payload, uint32_t len, vs_err_t *err)
{
	uint8_t hdr[VMC_HEADER_SIZE];
	vmc_frame_header(hdr, type, len);
	if (vs_write_all(fd, hdr, sizeof(hdr), err) < 0 ||
	    (len && vs_write_all(fd, payload, len, err) < 0))
		return vs_err_wrap(err, "agent protocol: send %s", vmc_type_name(type));
	return 0;
}

int vmc_send_u32(int fd, uint8_t type, uint32_t v, vs_err_t *err)
{
	uint8_t p[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	return vmc_send(fd, type, p, 4, err);
}
