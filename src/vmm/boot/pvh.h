/* PVH boot: Xen's hvm_start_info ABI (not in Linux's uapi, so declared here per
 * xen/include/public/arch-x86/hvm/start_info.h). */
#ifndef VESSEL_VMM_BOOT_PVH_H
#define VESSEL_VMM_BOOT_PVH_H

#include <stdint.h>

#include "base/error.h"
#include "vmm/memory.h"

#define HVM_START_MAGIC 0x336ec578
#define HVM_START_VERSION 1

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info ABI");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry ABI");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm_memmap_table_entry ABI");

/* Writes hvm_start_info (+ modlist, memmap) at LAYOUT_PVH_INFO; initrd_size 0 = none. */
int pvh_write_start_info(struct guest_mem *m, uint64_t rsdp, uint64_t initrd, uint64_t initrd_size,
			 vs_err_t *err);

#endif
