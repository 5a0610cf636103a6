/* virtio-net over a host tap: `--net tap=NAME[,mac=MAC][,bw=RATE][,ops=N]` (repeatable). */
#ifndef VESSEL_VMM_VIRTIO_NET_H
#define VESSEL_VMM_VIRTIO_NET_H

#include "base/error.h"

struct vm;

/* Parses spec, attaches to (or creates) the tap, and registers a virtio-mmio net device. */
int virtio_net_add(struct vm *vm, const char *spec, vs_err_t *err);

#endif
