/* The pure parts of virtio-net's data path (no VM, no tap), so tests can reach them. */
#ifndef VESSEL_VMM_VIRTIO_NET_FRAME_H
#define VESSEL_VMM_VIRTIO_NET_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <linux/virtio_net.h>

#include "vmm/virtio/queue.h"

/* virtio 1.x: the header always carries num_buffers (struct virtio_net_hdr_mrg_rxbuf). */
#define NET_HDR_LEN 12
/* The largest frame either way: a 64 KiB GSO packet plus Ethernet and VLAN headers. */
#define NET_FRAME_MAX (NET_HDR_LEN + 65535 + 14 + 4)

/* The features vessel offers: checksum and TSO offloads both ways, mergeable receive
 * buffers, the MAC and link status in config space. */
#define NET_F(bit) (1ULL << (bit))
#define NET_FEATURES                                                                               \
	(NET_F(VIRTIO_NET_F_CSUM) | NET_F(VIRTIO_NET_F_GUEST_CSUM) | NET_F(VIRTIO_NET_F_MAC) |     \
	 NET_F(VIRTIO_NET_F_GUEST_TSO4) | NET_F(VIRTIO_NET_F_GUEST_TSO6) |                         \
	 NET_F(VIRTIO_NET_F_HOST_TSO4) | NET_F(VIRTIO_NET_F_HOST_TSO6) |                           \
	 NET_F(VIRTIO_NET_F_MRG_RXBUF) | NET_F(VIRTIO_NET_F_STATUS))

/* Why a transmit chain breaks the rules (NULL: it is fine): header + frame, readable only. */
const char *net_tx_chain_invalid(const struct virtq_chain *c);

/* Fixes a received header for the driver: num_buffers, and no checksum flags unless it
 * took VIRTIO_NET_F_GUEST_CSUM (the spec's rule, whatever the tap set). */
void net_rx_hdr_fix(uint8_t *hdr, uint64_t features, uint16_t num_buffers);

/* Copies len bytes of src across the device-writable segments of chains[0..n), filling each
 * chain before the next; used[i] gets the bytes that went into chains[i]. Returns how many
 * chains it took (0 if they cannot hold len bytes: nothing is reported as used then). */
unsigned net_copy_to_chains(const uint8_t *src, size_t len, struct virtq_chain *const *chains,
			    unsigned n, uint32_t *used);

/* The device config space: mac[6], status (LINK_UP), max_virtqueue_pairs (1). */
#define NET_CONFIG_LEN 10
void net_config_bytes(const uint8_t mac[6], uint8_t out[NET_CONFIG_LEN]);

#endif
