/* libFuzzer harness: arbitrary bytes as a kernel image. Detection (ELF / PVH note /
 * bzImage setup header), then what vessel does with a parsed image: the
 * boot_params setup header copy, initrd placement and loading into guest RAM.
 *
 * Built by `make fuzz` (tests/fuzz/meson.build picks up every fuzz_*.c). By hand:
 *   clang -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc \
 *     tests/fuzz/fuzz_kernel_image.c src/vmm/boot/image.c src/vmm/boot/linux.c \
 *     src/vmm/boot/load.c src/vmm/memory.c src/base/error.c src/base/json.c \
 *     src/base/log.c src/base/util.c -ljansson -o fuzz_kernel_image
 *   ./fuzz_kernel_image -max_len=65536 tests/fuzz/corpus/kernel_image
 */
#include <asm/bootparam.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vmm/boot/image.h"
#include "vmm/boot/linux.h"
#include "vmm/boot/load.h"
#include "vmm/memory.h"

#define GUEST_RAM (32ULL << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct guest_mem mem;
	static struct boot_params bp;
	if (!mem.host && guest_mem_map(&mem, GUEST_RAM, 0, NULL) < 0)
		return 0;

	struct kimage k;
	vs_err_t err = NULL;
	if (kimage_parse(data, size, &k, &err) < 0) {
		vs_err_free(&err);
		return 0;
	}
	/* what a successful parse promises: segments inside the file, no wrap-around */
	for (size_t i = 0; i < k.nsegs; i++) {
		const struct kimage_seg *s = &k.segs[i];
		if (s->file_off > size || s->file_size > size - s->file_off ||
		    s->file_size > s->mem_size || s->paddr + s->mem_size < s->paddr)
			__builtin_trap();
	}
	memset(&bp, 0, sizeof(bp));
	linux_fill_boot_params(&bp, &k, data, GUEST_RAM, 0, 0, 0xe0000);
	uint64_t initrd;
	if (initrd_place(4096, k.load_end, linux_initrd_limit(&k, &mem), &initrd, &err) < 0)
		vs_err_free(&err);
	if (kimage_load(&k, data, size, &mem, &err) < 0)
		vs_err_free(&err);
	return 0;
}
