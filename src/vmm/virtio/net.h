/* virtio-net over a tap: `--net tap=NAME[,mac=MAC][,bw=..,ops=..]`. */
#ifndef VESSEL_VMM_VIRTIO_NET_H
#define VESSEL_VMM_VIRTIO_NET_H

#include "base/error.h"

struct vm;

/* Parses one --net SPEC (errors name the option) and registers the device. */
int virtio_net_add(struct vm *vm, const char *spec, vs_err_t *err);

#endif
