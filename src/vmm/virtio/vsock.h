/* virtio-vsock (virtio 1.2, 5.10) proxied to host Unix sockets, Firecracker's way:
 * `--vsock cid=N,uds=PATH`, `PUT /vsock` (docs/vsock.md). */
#ifndef VESSEL_VMM_VIRTIO_VSOCK_H
#define VESSEL_VMM_VIRTIO_VSOCK_H

#include "vmm/device.h"

/* "vsock": the config is a struct vsock_spec; create listens on its uds and registers a
 * virtio-mmio vsock device (at most one a VM). */
extern const struct device_kind virtio_vsock_kind;

#endif
