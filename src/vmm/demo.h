/* The tiny guest built into the binary (tests/guests' `demo`), for hosts where
 * Linux cannot boot. Empty when the build had no demo guest. */
#ifndef VESSEL_VMM_DEMO_H
#define VESSEL_VMM_DEMO_H

#include <stddef.h>
#include <stdint.h>

/* Returns the ELF image and its size (0 when none was built in). */
size_t vmm_demo_image(const uint8_t **image);

#endif
