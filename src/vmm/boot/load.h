/* Puts a parsed kernel, its initrd and its command line into guest RAM. */
#ifndef VESSEL_VMM_BOOT_LOAD_H
#define VESSEL_VMM_BOOT_LOAD_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "vmm/boot/image.h"
#include "vmm/memory.h"

/* Copies the segments; fails with a clear hint when --memory is too small. */
int kimage_load(const struct kimage *k, const uint8_t *file, size_t len, struct guest_mem *m,
		vs_err_t *err);

/* Highest page-aligned address for an initrd of `size` bytes that starts at or above
 * `floor` and ends at or below `limit` (exclusive). Pure. */
int initrd_place(uint64_t size, uint64_t floor, uint64_t limit, uint64_t *addr, vs_err_t *err);

/* The most a command line may hold for this kernel (without the NUL). */
size_t kimage_cmdline_max(const struct kimage *k);

/* Writes the NUL-terminated command line at LAYOUT_CMDLINE. */
int cmdline_load(const struct kimage *k, const char *cmdline, struct guest_mem *m, vs_err_t *err);

#endif
