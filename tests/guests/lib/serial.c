/* COM1, polled: the guests' only way to report. */
#include "guest.h"

#define COM1 0x3f8
#define UART_LSR 5
#define LSR_DATA_READY 0x01
#define LSR_THR_EMPTY 0x20

void serial_putc(char c)
{
	/* A UART that never drains would hang the guest: give up after a while. */
	for (int i = 0; i < 100000 && !(inb(COM1 + UART_LSR) & LSR_THR_EMPTY); i++)
		cpu_relax();
	outb(COM1, (uint8_t)c);
}

int serial_getc(void)
{
	while (!(inb(COM1 + UART_LSR) & LSR_DATA_READY))
		cpu_relax();
	return inb(COM1);
}
