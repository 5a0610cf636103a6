/* virtio-blk: `--disk PATH[,ro][,id=NAME][,direct][,bw=..,iops=..]`. */
#ifndef VESSEL_VMM_VIRTIO_BLK_H
#define VESSEL_VMM_VIRTIO_BLK_H

#include "base/error.h"

struct vm;

/* Parses one --disk SPEC (errors name the option) and registers the device. */
int virtio_blk_add(struct vm *vm, const char *spec, vs_err_t *err);

#endif
