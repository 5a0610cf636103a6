/* Kernel image detection and parsing, on a memory buffer (so it can be fuzzed).
 *
 *   ELF with a PVH note (XEN_ELFNOTE_PHYS32_ENTRY) -> PVH boot (32-bit entry)
 *   Linux bzImage ("HdrS", protocol >= 2.06, XLF_KERNEL_64) -> 64-bit boot protocol
 *   ELF64 vmlinux without a PVH note -> 64-bit entry at e_entry with boot_params
 * Every offset and size read from the file is checked against the buffer. */
#ifndef VESSEL_VMM_BOOT_IMAGE_H
#define VESSEL_VMM_BOOT_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

enum kimage_kind { KIMAGE_PVH, KIMAGE_BZIMAGE, KIMAGE_ELF64 };

#define KIMAGE_MAX_SEGS 16
#define XEN_ELFNOTE_PHYS32_ENTRY 18

struct kimage_seg {
	uint64_t file_off, file_size; /* bytes copied from the file */
	uint64_t paddr, mem_size;     /* where, and how much RAM it spans (rest is zero) */
};

struct kimage_bzimage {
	uint16_t version; /* boot protocol, e.g. 0x020f */
	uint8_t setup_sects;
	uint8_t relocatable;
	uint16_t xloadflags;
	uint32_t initrd_addr_max;
	uint32_t cmdline_size;
	uint32_t init_size;
	uint64_t pref_address;
	size_t header_end; /* end of the setup header in the file (for boot_params.hdr) */
};

struct kimage {
	enum kimage_kind kind;
	uint64_t entry; /* guest-physical entry point */
	struct kimage_seg segs[KIMAGE_MAX_SEGS];
	size_t nsegs;
	uint64_t load_start, load_end; /* lowest and one past the highest byte it needs */
	struct kimage_bzimage bz;      /* KIMAGE_BZIMAGE only */
};

const char *kimage_kind_name(enum kimage_kind k);

/* Fills *out; errors say what is wrong with the file ("not a kernel: ..."). */
int kimage_parse(const uint8_t *buf, size_t len, struct kimage *out, vs_err_t *err);

#endif
