/* The guest's serial console on vessel's stdin: input into COM1's receive FIFO, paced by
 * it (raw mode on a tty, where Ctrl-A x stops the VM). Guest output goes to stdout from
 * the UART itself. The controller's loop drives it. */
#ifndef VESSEL_VMM_CONSOLE_H
#define VESSEL_VMM_CONSOLE_H

#include "base/error.h"

struct console;
struct loop;
struct serial;
struct vm;

struct console *console_attach(struct loop *loop, struct vm *vm, struct serial *serial,
			       vs_err_t *err);
/* Gives the terminal back as it was. */
void console_detach(struct console *c);

/* Around each wait of the loop: the longest the loop may sleep (ms, -1: no limit), and
 * reading a stdin that epoll cannot watch (a regular file). */
int console_before_wait(struct console *c);
void console_after_wait(struct console *c);

#endif
