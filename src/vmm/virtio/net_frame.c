#include "vmm/virtio/net_frame.h"

#include <linux/virtio_net.h>
#include <string.h>

const char *net_tx_chain_invalid(const struct virtq_chain *c)
{
	if (c->n_in)
		return "transmit buffer has a device-writable part";
	if (c->out_len < NET_HDR_LEN)
		return "transmit buffer shorter than the virtio-net header";
	if (c->out_len > NET_FRAME_MAX)
		return "transmit frame longer than 64 KiB";
	return NULL;
}

void net_rx_hdr_fix(uint8_t *hdr, uint64_t features, uint16_t num_buffers)
{
	struct virtio_net_hdr_mrg_rxbuf h;
	memcpy(&h, hdr, sizeof(h));
	if (!(features & NET_F(VIRTIO_NET_F_GUEST_CSUM)))
		h.hdr.flags = 0;
	h.num_buffers = num_buffers; /* x86 is little-endian, as virtio 1.x is */
	memcpy(hdr, &h, sizeof(h));
}

unsigned net_copy_to_chains(const uint8_t *src, size_t len, struct virtq_chain *const *chains,
			    unsigned n, uint32_t *used)
{
	uint64_t room = 0;
	unsigned need = 0;
	while (need < n && room < len)
		room += chains[need++]->in_len;
	if (room < len || need == 0)
		return 0;
	for (unsigned i = 0; i < need; i++) {
		used[i] = 0;
		for (unsigned s = 0; s < chains[i]->n_in && len; s++) {
			const struct virtq_seg *seg = &chains[i]->in[s];
			size_t k = seg->len < len ? seg->len : len;
			memcpy(seg->host, src, k);
			src += k;
			len -= k;
			used[i] += (uint32_t)k;
		}
	}
	return need;
}

void net_config_bytes(const uint8_t mac[6], uint8_t out[NET_CONFIG_LEN])
{
	memcpy(out, mac, 6);
	out[6] = VIRTIO_NET_S_LINK_UP;
	out[7] = 0;
	out[8] = 1; /* one queue pair */
	out[9] = 0;
}
