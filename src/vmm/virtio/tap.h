/* A host tap interface carrying frames with a virtio-net header in front (IFF_VNET_HDR). */
#ifndef VESSEL_VMM_VIRTIO_TAP_H
#define VESSEL_VMM_VIRTIO_TAP_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"

/* Attaches to tap `name` in vessel's network namespace, creating it if missing (a tap vessel
 * created lives as long as vessel and is brought up; an existing one is left as configured).
 * The fd is non-blocking and every frame on it starts with a vnet_hdr_len-byte header. */
int tap_open(const char *name, unsigned vnet_hdr_len, bool *created, vs_err_t *err);

/* Which offloads the tap may hand us (TUNSETOFFLOAD), from the driver's VIRTIO_NET_F_GUEST_*
 * features: with none, the host checksums and segments every frame before we see it. */
int tap_set_offload(int fd, uint64_t guest_features, vs_err_t *err);

#endif
