/* virtio-blk: `--disk PATH[,ro][,id=NAME][,direct][,bw=RATE][,iops=N][,bw_burst=SIZE]
 * [,iops_burst=N]` (a struct blk_spec) as a virtio-mmio block device with an io_uring
 * backend. */
#ifndef VESSEL_VMM_VIRTIO_BLK_H
#define VESSEL_VMM_VIRTIO_BLK_H

#include "vmm/device.h"

/* "drive": the config is a struct blk_spec; create opens the disk and registers the
 * device (errors name the file, the caller names the option). */
extern const struct device_kind virtio_blk_kind;

#endif
