/* Reads one line from the UART and echoes it back: proves the host's stdin reaches RBR. */
#include "guest.h"

#define LINE_MAX 128

void guest_main(void)
{
	char line[LINE_MAX + 1];
	int n = 0;

	gprintf("ECHO READY\n");
	for (;;) {
		int c = serial_getc();

		if (c == '\n' || c == '\r')
			break;
		if (n < LINE_MAX)
			line[n++] = (char)c;
	}
	line[n] = 0;
	gprintf("ECHO: %s\n", line);
}
