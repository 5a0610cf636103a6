/* Reads the CMOS clock (BCD or binary per status register B) and prints it as UTC. */
#include "guest.h"

#define CMOS_INDEX 0x70
#define CMOS_DATA 0x71
#define RTC_UPDATE_IN_PROGRESS 0x80
#define RTC_BINARY 0x04
#define RTC_24H 0x02

static uint8_t cmos(uint8_t reg)
{
	outb(CMOS_INDEX, reg);
	return inb(CMOS_DATA);
}

static unsigned from_bcd(uint8_t v, int binary)
{
	return binary ? v : (v >> 4) * 10u + (v & 15);
}

void guest_main(void)
{
	uint8_t regs[6], again[6];
	static const uint8_t index[6] = {0x09, 0x08, 0x07, 0x04, 0x02, 0x00};
	uint8_t b = cmos(0x0b);
	int binary = (b & RTC_BINARY) != 0, tries = 0;
	unsigned hour;

	if (b == 0xff)
		guest_fail("no CMOS RTC: status register B reads 0xff");
	/* Read twice outside an update until both reads agree: a torn read is off by a unit. */
	do {
		for (int i = 0; i < 1000 && (cmos(0x0a) & RTC_UPDATE_IN_PROGRESS); i++)
			cpu_relax();
		for (int i = 0; i < 6; i++)
			regs[i] = cmos(index[i]);
		for (int i = 0; i < 6; i++)
			again[i] = cmos(index[i]);
	} while (memcmp(regs, again, sizeof(regs)) && ++tries < 5);

	hour = from_bcd(regs[3] & 0x7f, binary);
	if (!(b & RTC_24H) && (regs[3] & 0x80))
		hour = hour % 12 + 12; /* 12-hour mode, PM */
	else if (!(b & RTC_24H) && hour == 12)
		hour = 0;
	gprintf("RTC REGISTER B: 0x%02x\n", b);
	gprintf("RTC: 20%02u-%02u-%02u %02u:%02u:%02u\n", from_bcd(regs[0], binary),
		from_bcd(regs[1], binary), from_bcd(regs[2], binary), hour,
		from_bcd(regs[4], binary), from_bcd(regs[5], binary));
}
