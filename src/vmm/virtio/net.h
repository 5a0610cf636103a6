/* virtio-net over a host tap: `--net tap=NAME[,mac=MAC][,bw=RATE][,ops=N]` (repeatable). */
#ifndef VESSEL_VMM_VIRTIO_NET_H
#define VESSEL_VMM_VIRTIO_NET_H

#include "vmm/device.h"

/* "network-interface": the config is a struct net_spec; create attaches to (or creates)
 * the tap and registers a virtio-mmio net device. */
extern const struct device_kind virtio_net_kind;

#endif
