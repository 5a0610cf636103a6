/* virtio-blk: `--disk PATH[,ro][,id=NAME][,direct][,bw=RATE][,iops=N][,bw_burst=SIZE]
 * [,iops_burst=N]` as a virtio-mmio block device with an io_uring backend. */
#ifndef VESSEL_VMM_VIRTIO_BLK_H
#define VESSEL_VMM_VIRTIO_BLK_H

#include "base/error.h"

struct vm;

/* Parses spec, opens the disk and registers the device. Errors name the option:
 * `--disk /x,bw=fast: bw: not a rate`. */
int virtio_blk_add(struct vm *vm, const char *spec, vs_err_t *err);

#endif
