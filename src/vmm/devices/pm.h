/* ACPI fixed hardware of the hardware-reduced FADT: sleep control/status and reset. */
#ifndef VESSEL_VMM_DEVICES_PM_H
#define VESSEL_VMM_DEVICES_PM_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/exit_status.h"

/* opaque is a struct machine_ctl *. Ranges: PM_SLEEP_CONTROL_PORT (2 ports), PM_RESET_PORT. */
void pm_sleep_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
void pm_reset_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif
