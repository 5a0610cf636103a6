/* virtio-fs (virtio 1.2, 5.11), a vhost-user front-end for virtiofsd: `--fs
 * tag=TAG,socket=PATH`, the config file's "fs" array. The guest mounts the host
 * directory virtiofsd serves with `mount -t virtiofs TAG DIR`. */
#ifndef VESSEL_VMM_VIRTIO_FS_H
#define VESSEL_VMM_VIRTIO_FS_H

#include "vmm/device.h"

/* Debian's back-end (qemu-system-common), named in the error for a socket nobody serves */
#define FS_VIRTIOFSD "/usr/lib/qemu/virtiofsd"

/* "fs": the config is a struct fs_spec; create connects to its socket, asks the back-end's
 * features and registers a virtio-mmio device. The VM's RAM must be shared (shares_ram). */
extern const struct device_kind virtio_fs_kind;

#endif
