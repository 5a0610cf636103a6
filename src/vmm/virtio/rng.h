/* virtio-rng (virtio 1.x, 5.4): one request queue filled from getrandom(). */
#ifndef VESSEL_VMM_VIRTIO_RNG_H
#define VESSEL_VMM_VIRTIO_RNG_H

#include "base/error.h"

struct vm;

int virtio_rng_add(struct vm *vm, vs_err_t *err);

#endif
