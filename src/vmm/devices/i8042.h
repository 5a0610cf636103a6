/* Just enough of the i8042 keyboard controller: reset (0xFE), a quiet probe, and a keyboard
 * that answers Linux's commands and can type Ctrl+Alt+Del (Firecracker's SendCtrlAltDel). */
#ifndef VESSEL_VMM_DEVICES_I8042_H
#define VESSEL_VMM_DEVICES_I8042_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "vmm/devices/irq.h"
#include "vmm/exit_status.h"

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT 0x64
#define I8042_KBD_IRQ 1
#define I8042_AUX_IRQ 12

struct i8042;

/* irq: the keyboard's line (ISA IRQ 1), pulsed for each byte it sends while the guest has
 * keyboard interrupts on. */
struct i8042 *i8042_new(struct machine_ctl ctl, struct irq_line irq);
void i8042_free(struct i8042 *k);
/* A snapshot's part (device.h's save/restore; state is a struct i8042 *): registers and
 * unread keyboard bytes. Restore checks every field before it changes anything. */
int i8042_save(void *state, void **blob, size_t *len, vs_err_t *err);
int i8042_restore(void *state, const void *blob, size_t len, vs_err_t *err);
/* Bus handlers: data port 0x60 and command/status port 0x64. */
void i8042_data_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
void i8042_cmd_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* Types Ctrl+Alt+Del (scan code set 2, press and release). -1 with err when the guest has
 * not turned its keyboard on (no driver took it, or not yet). Any thread. */
int i8042_ctrl_alt_del(struct i8042 *k, vs_err_t *err);

#endif
