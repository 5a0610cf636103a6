/* Reports the command line and every memmap entry the VMM passed in hvm_start_info. */
#include "guest.h"

void guest_main(void)
{
	uint32_t n;
	const struct hvm_memmap_table_entry *e = guest_memmap(&n);

	gprintf("CMDLINE: %s\n", guest_cmdline());
	gprintf("MEMMAP ENTRIES: %u\n", n);
	for (uint32_t i = 0; i < n; i++)
		gprintf("MEMMAP %u: addr=0x%016llx size=0x%016llx type=%u\n", i, e[i].addr,
			e[i].size, e[i].type);
	gprintf("RAM BYTES: %llu\n", guest_ram_bytes());
}
