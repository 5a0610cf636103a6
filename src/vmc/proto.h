/* The agent protocol between the host and the guest agent of a VM-isolated container:
 * length-prefixed frames over vsock streams (docs/vm-containers.md). Parsing is pure so
 * the unit tests and the fuzzer reach it; the guest is untrusted, every field is checked. */
#ifndef VESSEL_VMC_PROTO_H
#define VESSEL_VMC_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

enum vmc_type {
	VMC_CONFIG = 1, /* host -> guest: {"id": ID, "config": {...}} */
	VMC_CREATED,	/* guest -> host: the container is created */
	VMC_START,	/* host -> guest (control connection) */
	VMC_KILL,	/* host -> guest (control, or an exec's after OK): u32 signal */
	VMC_STDIN,	/* host -> guest: bytes; empty means EOF */
	VMC_STDOUT,	/* guest -> host: bytes */
	VMC_STDERR,	/* guest -> host: bytes */
	VMC_EXIT,	/* guest -> host: u32 exit status (128+N for signal N) */
	VMC_OK,		/* guest -> host: a control request succeeded */
	VMC_ERROR,	/* guest -> host: text, why something failed */
	VMC_EXEC,	/* host -> guest (control): exec_msg.h's JSON; then OK or ERROR,
			 * and the connection carries the process's STDIN/STDOUT/STDERR/EXIT */
	VMC_FILE,	/* host -> guest (main, after CONFIG): a bind-mounted file's bytes */
	VMC_OCI,	/* host -> guest (control): ops_msg.h's JSON (ps, pause, ...) */
	VMC_OUTPUT,	/* guest -> host (control): that command's stdout, before OK */
	VMC_RESIZE,	/* host -> guest (main, or an exec's control after OK): the terminal's
			 * new size, u16 rows and u16 columns */
	VMC_TYPE_MAX = VMC_RESIZE,
};

#define VMC_HEADER_SIZE 8
#define VMC_MAX_PAYLOAD (1u << 20)
/* vsock ports the agent uses: it connects to the host's MAIN; it listens on CONTROL */
#define VMC_PORT_MAIN 1024
#define VMC_PORT_CONTROL 1025

struct vmc_frame {
	uint8_t type;
	uint32_t len;
	const uint8_t *payload; /* into the parsed buffer */
};

/* One frame from the front of buf: 1 with *f and *used set, 0 when buf holds only part
 * of one, -1 with err when the bytes can't be a frame (unknown type, reserved bits set,
 * too long, a fixed-size payload of another size). */
int vmc_frame_parse(const uint8_t *buf, size_t n, struct vmc_frame *f, size_t *used, vs_err_t *err);
void vmc_frame_header(uint8_t hdr[VMC_HEADER_SIZE], uint8_t type, uint32_t len);
const char *vmc_type_name(uint8_t type);
/* The u32 of KILL and EXIT (parse checked the size). */
uint32_t vmc_frame_u32(const struct vmc_frame *f);
/* RESIZE's payload: rows, then columns, each u16 little-endian (parse checked the size). */
#define VMC_RESIZE_SIZE 4
void vmc_resize_payload(uint8_t p[VMC_RESIZE_SIZE], uint16_t rows, uint16_t cols);
void vmc_frame_resize(const struct vmc_frame *f, uint16_t *rows, uint16_t *cols);

/* KILL's signal, checked to be one kill(2) takes (1..VMC_MAX_SIGNAL): 0 with *sig, or -1
 * with err. */
#define VMC_MAX_SIGNAL 64
int vmc_frame_signal(const struct vmc_frame *f, int *sig, vs_err_t *err);

/* The streams the agent reads frames from once the process runs: the main connection
 * (the container's init) and an exec's control connection after its OK. */
enum vmc_stream {
	VMC_STREAM_MAIN,
	VMC_STREAM_EXEC,
};
/* Which frames the agent takes there: STDIN on both, KILL on an exec's (main's process
 * gets its signals through a control request: KILL there runs the guest's kill), RESIZE
 * only where the process has a terminal. 0, or -1 with err naming the frame and stream. */
int vmc_agent_accepts(enum vmc_stream s, uint8_t type, bool terminal, vs_err_t *err);

/* A buffered reader over a stream socket. */
struct vmc_reader {
	uint8_t *buf;
	size_t have, cap, consumed;
};
/* Blocks for the next frame: 1 with *f (valid until the next call), 0 at a clean EOF,
 * -1 with err (a read error, a bad frame, EOF inside a frame). */
int vmc_read_frame(int fd, struct vmc_reader *r, struct vmc_frame *f, vs_err_t *err);
/* What is buffered already holds a whole frame (poll won't say so). */
int vmc_reader_ready(const struct vmc_reader *r);
void vmc_reader_free(struct vmc_reader *r);
int vmc_send(int fd, uint8_t type, const void *payload, uint32_t len, vs_err_t *err);
int vmc_send_u32(int fd, uint8_t type, uint32_t v, vs_err_t *err);

#endif
