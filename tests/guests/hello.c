/* The least a guest can do: one line, then poweroff. What bench/vm-boot.sh times. */
#include "guest.h"

void guest_main(void)
{
	gprintf("HELLO: vessel tiny guest\n");
}
