/* virtio-rng (virtio 1.x, 5.4): one request queue filled from getrandom(). */
#ifndef VESSEL_VMM_VIRTIO_RNG_H
#define VESSEL_VMM_VIRTIO_RNG_H

#include "vmm/device.h"

/* "entropy": `--rng [SPEC]`, a rate limit or none (rng_spec.h). */
extern const struct device_kind virtio_rng_kind;

#endif
