/* Boot structures: memory map, initrd placement, command line limits,
 * boot_params and hvm_start_info contents. */
#include <errno.h>
#include <criterion/criterion.h>
#include <asm/bootparam.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/boot/image.h"
#include "vmm/boot/linux.h"
#include "vmm/boot/load.h"
#include "vmm/boot/pvh.h"
#include "vmm/layout.h"
#include "vmm/memory.h"
#include "vmm/config.h"

Test(memmap, small_guest)
{
	struct guest_region r[GUEST_MEMMAP_MAX];
	size_t n = guest_memmap(128ULL << 20, r);
	cr_assert_eq(n, 3);
	cr_assert_eq(r[0].addr, 0);
	cr_assert_eq(r[0].size, 0x9fc00);
	cr_assert_eq(r[0].type, GUEST_RAM);
	cr_assert_eq(r[1].addr, 0x9fc00);
	cr_assert_eq(r[1].addr + r[1].size, 0x100000);
	cr_assert_eq(r[1].type, GUEST_RESERVED);
	cr_assert_eq(r[2].addr, 0x100000);
	cr_assert_eq(r[2].addr + r[2].size, 128ULL << 20);
}

Test(memmap, skips_the_mmio_hole)
{
	struct guest_region r[GUEST_MEMMAP_MAX];
	size_t n = guest_memmap(5ULL << 30, r);
	cr_assert_eq(n, 4);
	cr_assert_eq(r[2].addr + r[2].size, 0xc0000000);
	cr_assert_eq(r[3].addr, 0x100000000ULL);
	cr_assert_eq(r[3].size, (5ULL << 30) - 0xc0000000);
	uint64_t ram = 0;
	for (size_t i = 0; i < n; i++)
		if (r[i].type == GUEST_RAM)
			ram += r[i].size;
	cr_assert_eq(ram, (5ULL << 30) - (0x100000 - 0x9fc00));
}

Test(memmap, exactly_3g_has_no_high_part)
{
	struct guest_region r[GUEST_MEMMAP_MAX];
	cr_assert_eq(guest_memmap(0xc0000000ULL, r), 3);
}

Test(memory, size_checks)
{
	vs_err_t err = NULL;
	cr_assert_eq(guest_mem_check_size(128ULL << 20, 1ULL << 30, &err), 0);
	cr_assert_eq(guest_mem_check_size(1000, 1ULL << 30, &err), -1);
	cr_assert(strstr(err->msg, "multiple of 4 KiB"));
	vs_err_free(&err);
	cr_assert_eq(guest_mem_check_size(1ULL << 20, 1ULL << 30, &err), -1);
	cr_assert(strstr(err->msg, "too small"));
	vs_err_free(&err);
	cr_assert_eq(guest_mem_check_size(2ULL << 30, 1ULL << 30, &err), -1);
	cr_assert(strstr(err->msg, "more than this host's 1024 MiB"), "%s", err->msg);
	vs_err_free(&err);
}

Test(memory, pointers_respect_the_hole)
{
	struct guest_mem m = {0};
	vs_err_t err = NULL;
	cr_assert_eq(guest_mem_map(&m, 0xc0000000ULL + (64ULL << 20), 0, &err), 0);
	cr_assert_not_null(guest_mem_ptr(&m, 0, 4096));
	cr_assert_not_null(guest_mem_ptr(&m, 0xc0000000ULL - 4096, 4096));
	cr_assert_null(guest_mem_ptr(&m, 0xc0000000ULL - 4096, 8192), "runs into the hole");
	cr_assert_null(guest_mem_ptr(&m, 0xd0000000ULL, 1), "in the hole");
	cr_assert_eq((uint8_t *)guest_mem_ptr(&m, 0x100000000ULL, 1), m.host + 0xc0000000ULL);
	cr_assert_not_null(guest_mem_ptr(&m, 0x100000000ULL + (64ULL << 20) - 1, 1));
	cr_assert_null(guest_mem_ptr(&m, 0x100000000ULL + (64ULL << 20), 1));
	cr_assert_null(guest_mem_ptr(&m, UINT64_MAX, 2), "no wrap-around");
	cr_assert_null(guest_mem_ptr(&m, 16, UINT64_MAX));
	guest_mem_unmap(&m);
}

Test(initrd, placed_high_and_aligned)
{
	uint64_t addr;
	vs_err_t err = NULL;
	cr_assert_eq(initrd_place(10000, 0x200000, 0x8000000, &addr, &err), 0);
	cr_assert_eq(addr % 4096, 0);
	cr_assert_eq(addr, 0x8000000 - 12288);
	cr_assert_eq(initrd_place(0x8000000, 0x200000, 0x8000000, &addr, &err), -1);
	cr_assert(strstr(err->msg, "does not fit"), "%s", err->msg);
	vs_err_free(&err);
	cr_assert_eq(initrd_place(0, 0, 0x8000000, &addr, &err), -1);
	vs_err_free(&err);
	cr_assert_eq(initrd_place(UINT64_MAX - 10, 0, UINT64_MAX, &addr, &err), -1);
	vs_err_free(&err);
}

Test(cmdline, limits_and_command_words)
{
	struct kimage k = {.kind = KIMAGE_PVH};
	cr_assert_eq(kimage_cmdline_max(&k), 2047);
	k.kind = KIMAGE_BZIMAGE;
	k.bz.cmdline_size = 255;
	cr_assert_eq(kimage_cmdline_max(&k), 255);

	char *words[] = {"sh", "-c", "echo hi"};
	char *s = vm_build_cmdline("console=ttyS0", words, 3);
	/* Linux keeps a double-quoted word whole and strips the quotes */
	cr_assert_str_eq(s, "console=ttyS0 -- sh -c \"echo hi\"");
	free(s);
	char *bad[] = {"say", "\"hi\""};
	errno = 0;
	cr_assert_null(vm_build_cmdline("", bad, 2));
	cr_assert_eq(errno, EINVAL);
	s = vm_build_cmdline("", words, 1);
	cr_assert_str_eq(s, "-- sh");
	free(s);
	s = vm_build_cmdline("quiet", NULL, 0);
	cr_assert_str_eq(s, "quiet");
	free(s);
}

Test(cmdline, too_long_is_refused)
{
	struct guest_mem m = {0};
	vs_err_t err = NULL;
	cr_assert_eq(guest_mem_map(&m, 4ULL << 20, 0, &err), 0);
	struct kimage k = {.kind = KIMAGE_BZIMAGE, .bz.cmdline_size = 8};
	cr_assert_eq(cmdline_load(&k, "12345678", &m, &err), 0);
	cr_assert_str_eq((char *)m.host + LAYOUT_CMDLINE, "12345678");
	cr_assert_eq(cmdline_load(&k, "123456789", &m, &err), -1);
	cr_assert(strstr(err->msg, "at most 8"), "%s", err->msg);
	vs_err_free(&err);
	guest_mem_unmap(&m);
}

Test(boot_params, bzimage_header_e820_initrd)
{
	static uint8_t file[8192];
	memset(file, 0, sizeof(file));
	memcpy(file + 0x202, "HdrS", 4);
	uint16_t version = 0x020f;
	memcpy(file + 0x206, &version, 2);
	file[0x201] = 0x6a;
	struct kimage k = {.kind = KIMAGE_BZIMAGE, .bz.header_end = 0x26c, .bz.version = 0x020f};
	static struct boot_params bp;
	memset(&bp, 0, sizeof(bp));
	linux_fill_boot_params(&bp, &k, file, 512ULL << 20, 0x1f000000, 0x123456, 0xe0000);
	cr_assert_eq(bp.hdr.header, 0x53726448);
	cr_assert_eq(bp.hdr.version, 0x020f);
	cr_assert_eq(bp.hdr.type_of_loader, 0xff);
	cr_assert_eq(bp.hdr.cmd_line_ptr, LAYOUT_CMDLINE);
	cr_assert_eq(bp.hdr.ramdisk_image, 0x1f000000);
	cr_assert_eq(bp.hdr.ramdisk_size, 0x123456);
	cr_assert_eq(bp.acpi_rsdp_addr, 0xe0000);
	cr_assert_eq(bp.e820_entries, 3);
	cr_assert_eq(bp.e820_table[2].addr, 0x100000);
	cr_assert_eq(bp.e820_table[2].size, (512ULL << 20) - 0x100000);
	cr_assert_eq(bp.e820_table[2].type, 1);
	cr_assert_eq(bp.e820_table[1].type, 2);
}

Test(boot_params, vmlinux_gets_a_minimal_header)
{
	struct kimage k = {.kind = KIMAGE_ELF64};
	static struct boot_params bp;
	memset(&bp, 0, sizeof(bp));
	linux_fill_boot_params(&bp, &k, NULL, 6ULL << 30, 0, 0, 0xe0000);
	cr_assert_eq(bp.hdr.boot_flag, 0xaa55);
	cr_assert_eq(bp.hdr.header, 0x53726448);
	cr_assert_eq(bp.hdr.ramdisk_size, 0);
	cr_assert_eq(bp.e820_entries, 4);
	cr_assert_eq(bp.e820_table[3].addr, 0x100000000ULL);
}

Test(boot_params, initrd_limit_follows_the_header)
{
	struct guest_mem m = {.ram_size = 2ULL << 30, .low_size = 2ULL << 30};
	struct kimage k = {.kind = KIMAGE_BZIMAGE, .bz.initrd_addr_max = 0x37ffffff};
	cr_assert_eq(linux_initrd_limit(&k, &m), 0x38000000);
	m.ram_size = m.low_size = 256ULL << 20;
	cr_assert_eq(linux_initrd_limit(&k, &m), 256ULL << 20);
}

Test(pvh, start_info_and_memmap)
{
	struct guest_mem m = {0};
	vs_err_t err = NULL;
	cr_assert_eq(guest_mem_map(&m, 64ULL << 20, 0, &err), 0);
	cr_assert_eq(pvh_write_start_info(&m, 0xe0000, 0x3000000, 4096, &err), 0);
	struct hvm_start_info si;
	memcpy(&si, m.host + LAYOUT_PVH_INFO, sizeof(si));
	cr_assert_eq(si.magic, 0x336ec578);
	cr_assert_eq(si.version, 1);
	cr_assert_eq(si.cmdline_paddr, LAYOUT_CMDLINE);
	cr_assert_eq(si.rsdp_paddr, 0xe0000);
	cr_assert_eq(si.nr_modules, 1);
	struct hvm_modlist_entry mod;
	memcpy(&mod, m.host + si.modlist_paddr, sizeof(mod));
	cr_assert_eq(mod.paddr, 0x3000000);
	cr_assert_eq(mod.size, 4096);
	cr_assert_eq(si.memmap_entries, 3);
	struct hvm_memmap_table_entry e;
	memcpy(&e, m.host + si.memmap_paddr + 2 * sizeof(e), sizeof(e));
	cr_assert_eq(e.addr, 0x100000);
	cr_assert_eq(e.size, (64ULL << 20) - 0x100000);
	cr_assert_eq(e.type, 1);
	guest_mem_unmap(&m);
}

Test(load, kernel_bigger_than_memory)
{
	struct guest_mem m = {0};
	vs_err_t err = NULL;
	cr_assert_eq(guest_mem_map(&m, 4ULL << 20, 0, &err), 0);
	static uint8_t file[4096];
	struct kimage k = {.kind = KIMAGE_PVH,
			   .nsegs = 1,
			   .segs = {{0, 16, 0x100000, 8ULL << 20}},
			   .load_start = 0x100000,
			   .load_end = 0x900000};
	cr_assert_eq(kimage_load(&k, file, sizeof(file), &m, &err), -1);
	cr_assert(strstr(err->msg, "needs 9 MiB"), "%s", err->msg);
	vs_err_free(&err);
	k.segs[0].mem_size = 16;
	k.load_end = 0x100010;
	file[0] = 0xf4;
	cr_assert_eq(kimage_load(&k, file, sizeof(file), &m, &err), 0);
	cr_assert_eq(m.host[0x100000], 0xf4);
	guest_mem_unmap(&m);
}
