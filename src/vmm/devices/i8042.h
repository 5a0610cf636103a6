/* Just enough of the i8042 keyboard controller: reset (0xFE) and a quiet probe. */
#ifndef VESSEL_VMM_DEVICES_I8042_H
#define VESSEL_VMM_DEVICES_I8042_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/exit_status.h"

struct i8042;

struct i8042 *i8042_new(struct machine_ctl ctl);
void i8042_free(struct i8042 *k);
/* Bus handlers: data port 0x60 and command/status port 0x64. */
void i8042_data_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
void i8042_cmd_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif
