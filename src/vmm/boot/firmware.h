/* What a machine without a BIOS must still answer for. */
#ifndef VESSEL_VMM_BOOT_FIRMWARE_H
#define VESSEL_VMM_BOOT_FIRMWARE_H

#include "base/error.h"
#include "vmm/memory.h"

/* Writes a reset stub at the legacy reset vector (F000:FFF0). */
int firmware_write_reset_vector(struct guest_mem *m, vs_err_t *err);

#endif
