/* Linux's x86 64-bit boot protocol: the zero page (struct boot_params). */
#ifndef VESSEL_VMM_BOOT_LINUX_H
#define VESSEL_VMM_BOOT_LINUX_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "vmm/boot/image.h"
#include "vmm/memory.h"

struct boot_params;

/* Fills bp (zeroed by the caller): setup header from a bzImage (or the minimal one an ELF
 * vmlinux needs), e820 from the memory map, command line, initrd, RSDP. Pure. */
void linux_fill_boot_params(struct boot_params *bp, const struct kimage *k, const uint8_t *file,
			    uint64_t ram_size, uint64_t initrd, uint64_t initrd_size,
			    uint64_t rsdp);

/* Highest address (exclusive) an initrd may end at for this kernel. */
uint64_t linux_initrd_limit(const struct kimage *k, const struct guest_mem *m);

int linux_write_boot_params(struct guest_mem *m, const struct kimage *k, const uint8_t *file,
			    uint64_t initrd, uint64_t initrd_size, uint64_t rsdp, vs_err_t *err);

#endif
