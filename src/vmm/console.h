/* The main thread's event loop: serial input from stdin, signals, VM stop. */
#ifndef VESSEL_VMM_CONSOLE_H
#define VESSEL_VMM_CONSOLE_H

#include "base/error.h"

struct vm;
struct serial;

/* Blocks the signals the loop handles (call before starting vCPU threads). */
int console_block_signals(vs_err_t *err);

/* Runs until the VM stops; returns its exit status. stdin feeds the UART (raw mode
 * on a tty, Ctrl-A x quits); SIGINT/SIGTERM/SIGHUP stop the VM with 128 + signo. */
int console_loop(struct vm *vm, struct serial *serial, vs_err_t *err);

#endif
