/* virtio-vsock headers: decoding, the checks a guest's packet must pass, credit. */
#include "vmm/virtio/vsock_pkt.h"

#include <string.h>

static uint64_t get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void vsock_hdr_decode(const uint8_t raw[VSOCK_HDR_LEN], struct vsock_hdr *h)
{
	h->src_cid = get_le(raw + 0, 8);
	h->dst_cid = get_le(raw + 8, 8);
	h->src_port = (uint32_t)get_le(raw + 16, 4);
	h->dst_port = (uint32_t)get_le(raw + 20, 4);
	h->len = (uint32_t)get_le(raw + 24, 4);
	h->type = (uint16_t)get_le(raw + 28, 2);
	h->op = (uint16_t)get_le(raw + 30, 2);
	h->flags = (uint32_t)get_le(raw + 32, 4);
	h->buf_alloc = (uint32_t)get_le(raw + 36, 4);
	h->fwd_cnt = (uint32_t)get_le(raw + 40, 4);
}

void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t raw[VSOCK_HDR_LEN])
{
	put_le(raw + 0, h->src_cid, 8);
	put_le(raw + 8, h->dst_cid, 8);
	put_le(raw + 16, h->src_port, 4);
	put_le(raw + 20, h->dst_port, 4);
	put_le(raw + 24, h->len, 4);
	put_le(raw + 28, h->type, 2);
	put_le(raw + 30, h->op, 2);
	put_le(raw + 32, h->flags, 4);
	put_le(raw + 36, h->buf_alloc, 4);
	put_le(raw + 40, h->fwd_cnt, 4);
}

const char *vsock_hdr_invalid(const struct vsock_hdr *h, uint64_t guest_cid, uint64_t payload)
{
	if (h->src_cid != guest_cid)
		return "tx packet's src_cid is not the guest's CID";
	if (h->op == VSOCK_OP_INVALID || h->op > VSOCK_OP_CREDIT_REQUEST)
		return "tx packet has an unknown op";
	if (h->len > payload)
		return "tx packet's len runs past its buffers";
	if (h->len > VSOCK_MAX_PAYLOAD)
		return "tx packet's len is over 64 KiB";
	if (h->op != VSOCK_OP_RW && h->len != 0)
		return "tx control packet carries a payload";
	if (h->op == VSOCK_OP_SHUTDOWN &&
	    (h->flags & ~(VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND)) != 0)
		return "tx shutdown packet has unknown flags";
	return NULL;
}

uint32_t vsock_peer_free(uint32_t buf_alloc, uint32_t fwd_cnt, uint32_t sent)
{
	uint32_t in_flight = sent - fwd_cnt; /* modulo 2^32, as the counters wrap */
	return in_flight >= buf_alloc ? 0 : buf_alloc - in_flight;
}

bool vsock_fwd_cnt_valid(uint32_t old_fwd_cnt, uint32_t new_fwd_cnt, uint32_t sent)
{
	return (uint32_t)(new_fwd_cnt - old_fwd_cnt) <= (uint32_t)(sent - old_fwd_cnt);
}
