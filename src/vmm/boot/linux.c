#include "vmm/boot/linux.h"

#include <asm/bootparam.h>
#include <string.h>

#include "vmm/layout.h"

#define LOADER_UNDEFINED 0xff

void linux_fill_boot_params(struct boot_params *bp, const struct kimage *k, const uint8_t *file,
			    uint64_t ram_size, uint64_t initrd, uint64_t initrd_size, uint64_t rsdp)
{
	if (k->kind == KIMAGE_BZIMAGE) {
		size_t n = k->bz.header_end - 0x1f1;
		if (n > sizeof(bp->hdr))
			n = sizeof(bp->hdr);
		memcpy(&bp->hdr, file + 0x1f1, n);
	} else {
		bp->hdr.boot_flag = 0xaa55;
		bp->hdr.header = 0x53726448; /* "HdrS" */
		bp->hdr.kernel_alignment = 0x1000000;
	}
	bp->hdr.type_of_loader = LOADER_UNDEFINED;
	bp->hdr.code32_start = LAYOUT_HIMEM;
	bp->hdr.cmd_line_ptr = (uint32_t)LAYOUT_CMDLINE;
	bp->ext_cmd_line_ptr = (uint32_t)(LAYOUT_CMDLINE >> 32);
	if (initrd_size) {
		bp->hdr.ramdisk_image = (uint32_t)initrd;
		bp->hdr.ramdisk_size = (uint32_t)initrd_size;
		bp->ext_ramdisk_image = (uint32_t)(initrd >> 32);
		bp->ext_ramdisk_size = (uint32_t)(initrd_size >> 32);
	}
	bp->acpi_rsdp_addr = rsdp;

	struct guest_region r[GUEST_MEMMAP_MAX];
	size_t n = guest_memmap(ram_size, r);
	for (size_t i = 0; i < n; i++) {
		bp->e820_table[i].addr = r[i].addr;
		bp->e820_table[i].size = r[i].size;
		bp->e820_table[i].type = r[i].type; /* E820_RAM 1, E820_RESERVED 2 */
	}
	bp->e820_entries = (uint8_t)n;
}

uint64_t linux_initrd_limit(const struct kimage *k, const struct guest_mem *m)
{
	uint64_t limit = guest_mem_low_end(m);
	/* initrd_addr_max is the highest address the last byte may have */
	uint64_t max = k->kind == KIMAGE_BZIMAGE ? (uint64_t)k->bz.initrd_addr_max + 1 : 0x80000000;
	if (k->kind == KIMAGE_BZIMAGE && k->bz.initrd_addr_max == 0)
		max = 0x38000000; /* protocol default before 2.03 */
	return limit < max ? limit : max;
}

int linux_write_boot_params(struct guest_mem *m, const struct kimage *k, const uint8_t *file,
			    uint64_t initrd, uint64_t initrd_size, uint64_t rsdp, vs_err_t *err)
{
	struct boot_params *bp = guest_mem_ptr(m, LAYOUT_BOOT_PARAMS, sizeof(*bp));
	if (!bp)
		return vs_err(err, 0, "no guest RAM for boot_params");
	memset(bp, 0, sizeof(*bp));
	linux_fill_boot_params(bp, k, file, m->ram_size, initrd, initrd_size, rsdp);
	return 0;
}
