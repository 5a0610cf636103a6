#include "vmm/boot/load.h"

#include <string.h>

#include "vmm/layout.h"

#define MIB(x) ((unsigned long long)((x) >> 20))

int kimage_load(const struct kimage *k, const uint8_t *file, size_t len, struct guest_mem *m,
		vs_err_t *err)
{
	uint64_t low_end = guest_mem_low_end(m);
	if (k->load_end > low_end && m->ram_size <= low_end)
		return vs_err(err, 0,
			      "the kernel needs %llu MiB of guest memory (it loads up to 0x%llx) "
			      "but --memory is %llu MiB: give more",
			      MIB(k->load_end + (1 << 20) - 1), (unsigned long long)k->load_end,
			      MIB(m->ram_size));
	for (size_t i = 0; i < k->nsegs; i++) {
		const struct kimage_seg *s = &k->segs[i];
		uint8_t *dst = guest_mem_ptr(m, s->paddr, s->mem_size);
		if (!dst)
			return vs_err(err, 0,
				      "kernel segment at 0x%llx-0x%llx is not in guest RAM "
				      "(--memory %llu MiB)",
				      (unsigned long long)s->paddr,
				      (unsigned long long)(s->paddr + s->mem_size),
				      MIB(m->ram_size));
		if (s->file_off > len || s->file_size > len - s->file_off)
			return vs_err(err, 0, "kernel segment lies outside the file");
		/* fresh anonymous memory is already zero: the bss costs nothing */
		memcpy(dst, file + s->file_off, s->file_size);
	}
	return 0;
}

int initrd_place(uint64_t size, uint64_t floor, uint64_t limit, uint64_t *addr, vs_err_t *err)
{
	const uint64_t page = 4096;
	uint64_t need = (size + page - 1) & ~(page - 1);
	floor = (floor + page - 1) & ~(page - 1);
	if (size == 0 || need < size)
		return vs_err(err, 0, "initrd is empty");
	if (limit < floor || limit - floor < need)
		return vs_err(err, 0,
			      "initrd (%llu MiB) does not fit in guest memory between the kernel's "
			      "end (0x%llx) and 0x%llx: give more --memory",
			      MIB(size + (1 << 20) - 1), (unsigned long long)floor,
			      (unsigned long long)limit);
	*addr = (limit - need) & ~(page - 1);
	return 0;
}

size_t kimage_cmdline_max(const struct kimage *k)
{
	/* Linux's COMMAND_LINE_SIZE is 2048 on x86; a bzImage states its own limit. */
	if (k->kind == KIMAGE_BZIMAGE && k->bz.cmdline_size)
		return k->bz.cmdline_size < LAYOUT_CMDLINE_MAX ? k->bz.cmdline_size
							       : LAYOUT_CMDLINE_MAX - 1;
	return 2047;
}

int cmdline_load(const struct kimage *k, const char *cmdline, struct guest_mem *m, vs_err_t *err)
{
	size_t n = strlen(cmdline), max = kimage_cmdline_max(k);
	if (n > max)
		return vs_err(err, 0,
			      "kernel command line is %zu bytes; this kernel takes at most %zu", n,
			      max);
	char *dst = guest_mem_ptr(m, LAYOUT_CMDLINE, n + 1);
	if (!dst)
		return vs_err(err, 0, "no guest RAM for the command line");
	memcpy(dst, cmdline, n + 1);
	return 0;
}
