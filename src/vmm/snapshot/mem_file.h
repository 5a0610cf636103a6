/* The snapshot's memory file: guest RAM at its host offsets, ram_size bytes long.
 *
 * Full: every page (all-zero pages left as holes, which read back as zeros). Diff
 * (Firecracker's way): only the pages dirtied since the last snapshot, at their offsets,
 * the rest holes; a diff is applied by writing its data extents over its base
 * (mem_file_merge), after which the base is the later snapshot's full memory file. */
#ifndef VESSEL_VMM_SNAPSHOT_MEM_FILE_H
#define VESSEL_VMM_SNAPSHOT_MEM_FILE_H

#include <stdint.h>

#include "base/error.h"
#include "vmm/memory.h"

int mem_file_write_full(const struct guest_mem *m, const char *path, vs_err_t *err);
/* dirty: one bit per 4 KiB page (guest_mem_npages bits): KVM's dirty log ORed with
 * guest_mem_take_dirty. */
int mem_file_write_diff(const struct guest_mem *m, const uint64_t *dirty, const char *path,
			vs_err_t *err);
/* Writes the data extents of diff into base (same size, or an error naming both). */
int mem_file_merge(const char *base, const char *diff, vs_err_t *err);

#endif
