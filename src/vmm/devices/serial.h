/* 16550A UART (COM1): guest output to a host fd, host input into its receive FIFO. */
#ifndef VESSEL_VMM_DEVICES_SERIAL_H
#define VESSEL_VMM_DEVICES_SERIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "vmm/devices/irq.h"

struct serial;

/* Guest bytes are written to out_fd as they come (byte for byte). */
struct serial *serial_new(int out_fd, struct irq_line irq);
void serial_free(struct serial *s);
/* A snapshot's part (device.h's save/restore; state is a struct serial *): registers and
 * pending input. Restore checks every field before it changes anything. */
int serial_save(void *state, void **blob, size_t *len, vs_err_t *err);
int serial_restore(void *state, const void *blob, size_t len, vs_err_t *err);

/* Bus handler for the 8 registers. */
void serial_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* Room left in the receive FIFO, and feeding it (returns bytes taken). */
size_t serial_rx_room(struct serial *s);
size_t serial_rx_push(struct serial *s, const uint8_t *buf, size_t n);

#endif
