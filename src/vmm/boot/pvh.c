#include "vmm/boot/pvh.h"

#include <string.h>

#include "vmm/layout.h"

int pvh_write_start_info(struct guest_mem *m, uint64_t rsdp, uint64_t initrd, uint64_t initrd_size,
			 vs_err_t *err)
{
	struct guest_region regions[GUEST_MEMMAP_MAX];
	size_t n = guest_memmap(m->ram_size, regions);
	const uint64_t modlist = LAYOUT_PVH_INFO + sizeof(struct hvm_start_info);
	const uint64_t memmap = modlist + sizeof(struct hvm_modlist_entry);
	uint8_t *base =
	    guest_mem_ptr(m, LAYOUT_PVH_INFO,
			  memmap - LAYOUT_PVH_INFO + n * sizeof(struct hvm_memmap_table_entry));
	if (!base)
		return vs_err(err, 0, "no guest RAM for hvm_start_info");
	struct hvm_start_info si = {
	    .magic = HVM_START_MAGIC,
	    .version = HVM_START_VERSION,
	    .cmdline_paddr = LAYOUT_CMDLINE,
	    .rsdp_paddr = rsdp,
	    .memmap_paddr = memmap,
	    .memmap_entries = (uint32_t)n,
	};
	if (initrd_size) {
		struct hvm_modlist_entry mod = {.paddr = initrd, .size = initrd_size};
		si.nr_modules = 1;
		si.modlist_paddr = modlist;
		memcpy(base + (modlist - LAYOUT_PVH_INFO), &mod, sizeof(mod));
	}
	memcpy(base, &si, sizeof(si));
	for (size_t i = 0; i < n; i++) {
		struct hvm_memmap_table_entry e = {regions[i].addr, regions[i].size,
						   (uint32_t)regions[i].type, 0};
		memcpy(base + (memmap - LAYOUT_PVH_INFO) + i * sizeof(e), &e, sizeof(e));
	}
	return 0;
}
