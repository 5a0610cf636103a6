/* The vhost-user protocol's messages (QEMU's docs/interop/vhost-user.rst), the front-end's
 * side: requests encoded into bytes, the back-end's replies checked before anything reads
 * them. Pure: no sockets here (vhost_user_io.c), so the parser is fuzzed on its own
 * (tests/fuzz/fuzz_vhost_user.c).
 *
 * A message is a 12-byte header (request, flags, payload size; little-endian, x86-64's own
 * order) and the payload. Only what a front-end without VHOST_USER_F_PROTOCOL_FEATURES
 * sends is here: with it not negotiated the rings run from their kick and no request but a
 * GET_* is answered. */
#ifndef VESSEL_VMM_VIRTIO_VHOST_USER_H
#define VESSEL_VMM_VIRTIO_VHOST_USER_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "vmm/memory.h"

enum vhu_request {
	VHU_GET_FEATURES = 1,
	VHU_SET_FEATURES = 2,
	VHU_SET_OWNER = 3,
	VHU_SET_MEM_TABLE = 5,
	VHU_SET_VRING_NUM = 8,
	VHU_SET_VRING_ADDR = 9,
	VHU_SET_VRING_BASE = 10,
	VHU_GET_VRING_BASE = 11,
	VHU_SET_VRING_KICK = 12,
	VHU_SET_VRING_CALL = 13,
};

#define VHU_HDR_SIZE 12
#define VHU_VERSION 0x1
#define VHU_FLAG_REPLY 0x4
#define VHU_MAX_REGIONS 8 /* VHOST_MEMORY_BASELINE_NREGIONS: fds one message may carry */
/* the largest payload either side sends: a memory table of VHU_MAX_REGIONS */
#define VHU_MAX_PAYLOAD (8 + VHU_MAX_REGIONS * 32)
#define VHU_MAX_MSG (VHU_HDR_SIZE + VHU_MAX_PAYLOAD)

/* The feature bit that would turn on the protocol-features handshake (and start rings
 * disabled); vessel never sets it. */
#define VHU_F_PROTOCOL_FEATURES 30

struct vhu_region {
	uint64_t gpa, size, uaddr, mmap_offset;
};

/* A ring's addresses in the front-end's own address space (the back-end translates them
 * through the memory table's uaddr). */
struct vhu_vring_addr {
	uint32_t index, flags;
	uint64_t desc, used, avail, log;
};

/* Encoders: the whole message into buf (VHU_MAX_MSG bytes), its length returned. */
size_t vhu_encode(uint8_t *buf, enum vhu_request req); /* no payload: SET_OWNER, GET_FEATURES */
size_t vhu_encode_u64(uint8_t *buf, enum vhu_request req, uint64_t v);
/* SET_VRING_NUM, SET_VRING_BASE, GET_VRING_BASE: {index, num} */
size_t vhu_encode_state(uint8_t *buf, enum vhu_request req, uint32_t index, uint32_t num);
size_t vhu_encode_addr(uint8_t *buf, const struct vhu_vring_addr *a);
/* 0 with n > VHU_MAX_REGIONS */
size_t vhu_encode_mem(uint8_t *buf, const struct vhu_region *r, unsigned n);
/* SET_VRING_KICK / SET_VRING_CALL: the ring's index; its eventfd travels beside it */
size_t vhu_encode_fd(uint8_t *buf, enum vhu_request req, uint32_t index);

/* A reply's header (the back-end's 12 bytes) against the request it answers: version 1,
 * the reply flag, the same request, and exactly the payload size that request's answer
 * has (8 for both GET_FEATURES and GET_VRING_BASE). -1 with err saying what is wrong. */
int vhu_check_reply_header(const uint8_t *hdr, enum vhu_request req, uint32_t *size, vs_err_t *err);
/* A whole reply (header and payload, len bytes): GET_FEATURES's u64, or GET_VRING_BASE's
 * {index, num} whose index must be the one asked for and num a ring index (< 65536). */
int vhu_parse_features(const uint8_t *msg, size_t len, uint64_t *features, vs_err_t *err);
int vhu_parse_vring_base(const uint8_t *msg, size_t len, uint32_t index, uint16_t *base,
			 vs_err_t *err);

/* Guest RAM as the memory table: one region per part (below the MMIO hole at 0, the rest
 * at 4 GiB), each at its offset into the memfd that backs the one host mapping. Returns
 * the count (1 or 2). */
unsigned vhu_mem_regions(const struct guest_mem *m, struct vhu_region out[2]);

const char *vhu_request_name(uint32_t req);

#endif
