/* Loads an empty IDT and faults: #GP -> #DF -> shutdown, which the VMM must report. */
#include "guest.h"

void guest_main(void)
{
	gprintf("TRIPLE FAULT: empty IDT, then a bad segment selector\n");
	triple_fault();
}
