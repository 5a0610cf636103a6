/* The C side of the entry, boot info accessors, failure paths and the mem* gcc expects. */
#include "acpi.h"
#include "guest.h"

void guest_start(void);

void guest_start(void)
{
	if (start_info->magic != HVM_START_MAGIC)
		guest_fail("hvm_start_info magic");
	guest_main();
	acpi_poweroff();
}

void triple_fault(void)
{
	static const struct {
		uint16_t limit;
		uint32_t base;
	} __attribute__((packed)) empty_idt = {0, 0};

	/* With no IDT, the #GP from a bad selector becomes #DF, then a shutdown. */
	__asm__ volatile("lidt %0\n\t"
			 "mov $0xfff8, %%ax\n\t"
			 "mov %%ax, %%ds"
			 :
			 : "m"(empty_idt)
			 : "eax", "memory");
	for (;;)
		__asm__ volatile("hlt");
}

void tsc_delay(uint64_t ticks)
{
	for (uint64_t t0 = rdtsc(); rdtsc() - t0 < ticks;)
		cpu_relax();
}

void guest_fail(const char *what)
{
	gprintf("FAIL: %s\n", what);
	triple_fault();
}

const char *guest_cmdline(void)
{
	uint64_t p = start_info->cmdline_paddr;

	return p && p < 0xfffff000u ? (const char *)(uint32_t)p : "";
}

const struct hvm_memmap_table_entry *guest_memmap(uint32_t *count)
{
	uint64_t p = start_info->memmap_paddr;

	*count = 0;
	if (start_info->version < 1 || !p || p >= 0xfff00000u)
		return NULL;
	/* a bad count would walk off memory: the table is a few entries */
	*count = start_info->memmap_entries > 128 ? 128 : start_info->memmap_entries;
	return (const struct hvm_memmap_table_entry *)(uint32_t)p;
}

uint64_t guest_ram_bytes(void)
{
	uint32_t n;
	const struct hvm_memmap_table_entry *e = guest_memmap(&n);
	uint64_t sum = 0;

	for (uint32_t i = 0; i < n; i++)
		if (e[i].type == HVM_MEMMAP_RAM)
			sum += e[i].size;
	return sum;
}

uint8_t checksum8(const void *p, uint32_t len)
{
	const uint8_t *b = p;
	uint32_t sum = 0;

	/* Four bytes a step in two 16-bit lanes (the byte loop costs 4x the instructions where
	 * each is interpreted); a lane takes at most 510 a word, so fold every 128 words. */
	while (len >= 4) {
		uint32_t words = len / 4 > 128 ? 128 : len / 4, lanes = 0;

		len -= words * 4;
		for (; words; words--, b += 4) {
			uint32_t w = *(const uint32_t *)b;

			lanes += (w & 0x00ff00ff) + ((w >> 8) & 0x00ff00ff);
		}
		sum += (lanes & 0xffff) + (lanes >> 16);
	}
	while (len--)
		sum += *b++;
	return (uint8_t)sum;
}

void *memcpy(void *dst, const void *src, size_t n)
{
	void *d = dst;

	__asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	void *d = dst;

	__asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;

	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}
