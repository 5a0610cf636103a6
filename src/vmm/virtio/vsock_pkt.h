/* virtio-vsock's packet header and credit arithmetic (virtio 1.2, 5.10), pure code.
 *
 * Every packet on the rx and tx queues starts with a 44-byte little-endian header; the
 * guest writes the tx ones, so a header is decoded once into host-endian fields and then
 * checked here before the muxer looks at it. Credit (5.10.6.3): each side tells the other
 * how much it can buffer (buf_alloc) and how much it has consumed (fwd_cnt); a sender may
 * have at most buf_alloc - (sent - fwd_cnt) bytes in flight. */
#ifndef VESSEL_VMM_VIRTIO_VSOCK_PKT_H
#define VESSEL_VMM_VIRTIO_VSOCK_PKT_H

#include <stdbool.h>
#include <stdint.h>

#define VIRTIO_ID_VSOCK 19
#define VSOCK_HDR_LEN 44
#define VSOCK_HOST_CID 2
/* The largest payload either side puts in one packet (Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE). */
#define VSOCK_MAX_PAYLOAD (64u << 10)

enum vsock_op {
	VSOCK_OP_INVALID = 0,
	VSOCK_OP_REQUEST = 1,
	VSOCK_OP_RESPONSE = 2,
	VSOCK_OP_RST = 3,
	VSOCK_OP_SHUTDOWN = 4,
	VSOCK_OP_RW = 5,
	VSOCK_OP_CREDIT_UPDATE = 6,
	VSOCK_OP_CREDIT_REQUEST = 7,
};

#define VSOCK_TYPE_STREAM 1
#define VSOCK_SHUTDOWN_RCV 1u  /* the sender will receive no more */
#define VSOCK_SHUTDOWN_SEND 2u /* the sender will send no more */
#define VSOCK_EVENT_TRANSPORT_RESET 0

struct vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port;
	uint32_t len;
	uint16_t type, op;
	uint32_t flags;
	uint32_t buf_alloc, fwd_cnt;
};

void vsock_hdr_decode(const uint8_t raw[VSOCK_HDR_LEN], struct vsock_hdr *h);
void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t raw[VSOCK_HDR_LEN]);

/* What a tx packet from the guest breaks, or NULL. `payload` is how many bytes follow the
 * header in the chain. A broken header (a length beyond the chain or the packet limit, a
 * source that is not the guest, an unknown op, a payload on a control op, unknown
 * shutdown flags) is the driver's bug or an attack: the device needs a reset. A packet that
 * is only unwelcome (another type, a peer that is not the host) is not checked here. */
const char *vsock_hdr_invalid(const struct vsock_hdr *h, uint64_t guest_cid, uint64_t payload);

/* How many bytes the peer can take now: buf_alloc - (sent - fwd_cnt), 0 when that is
 * negative (the peer shrank its buffer). */
uint32_t vsock_peer_free(uint32_t buf_alloc, uint32_t fwd_cnt, uint32_t sent);
/* A peer's new fwd_cnt may only move forward, and not past what was sent to it: false
 * when it claims to have consumed bytes it never got (a lie about credit). */
bool vsock_fwd_cnt_valid(uint32_t old_fwd_cnt, uint32_t new_fwd_cnt, uint32_t sent);

#endif
