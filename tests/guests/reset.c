/* Resets the machine the PC way: the i8042 pulses the reset line on command 0xFE. */
#include "guest.h"

void guest_main(void)
{
	gprintf("RESET: i8042 0xfe to port 0x64\n");
	outb(0x64, 0xfe);
	/* QEMU acts on the request from its main loop, not at once */
	tsc_delay(STOP_WAIT_TICKS);
	guest_fail("the i8042 reset did not reset the machine");
}
