/* Kernel image detection: PVH ELF (32/64), ELF vmlinux, bzImage header checks,
 * and every malformed input turning into an error instead of a crash. */
#include <criterion/criterion.h>
#include <elf.h>
#include <string.h>

#include "vmm/boot/image.h"

#define IMG_SIZE 8192

static uint8_t img[IMG_SIZE];

struct note {
	uint32_t namesz, descsz, type;
	char name[4];
	uint32_t desc;
};

/* An ELF64 executable: one PT_LOAD at paddr, optionally a PT_NOTE with a PVH entry. */
static size_t make_elf64(uint64_t paddr, uint64_t entry, bool pvh, uint32_t pvh_entry)
{
	memset(img, 0, sizeof(img));
	Elf64_Ehdr eh = {.e_type = ET_EXEC,
			 .e_machine = EM_X86_64,
			 .e_version = EV_CURRENT,
			 .e_entry = entry,
			 .e_phoff = sizeof(Elf64_Ehdr),
			 .e_ehsize = sizeof(Elf64_Ehdr),
			 .e_phentsize = sizeof(Elf64_Phdr),
			 .e_phnum = pvh ? 2 : 1};
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	memcpy(img, &eh, sizeof(eh));
	Elf64_Phdr load = {.p_type = PT_LOAD,
			   .p_offset = 0x1000,
			   .p_paddr = paddr,
			   .p_vaddr = paddr,
			   .p_filesz = 0x100,
			   .p_memsz = 0x2000};
	memcpy(img + eh.e_phoff, &load, sizeof(load));
	if (pvh) {
		Elf64_Phdr nt = {
		    .p_type = PT_NOTE, .p_offset = 0x800, .p_filesz = sizeof(struct note)};
		memcpy(img + eh.e_phoff + sizeof(load), &nt, sizeof(nt));
		struct note n = {4, 4, XEN_ELFNOTE_PHYS32_ENTRY, "Xen", pvh_entry};
		memcpy(img + 0x800, &n, sizeof(n));
	}
	return 0x1100;
}

static size_t make_elf32_pvh(uint32_t paddr, uint32_t pvh_entry)
{
	memset(img, 0, sizeof(img));
	Elf32_Ehdr eh = {.e_type = ET_EXEC,
			 .e_machine = EM_386,
			 .e_version = EV_CURRENT,
			 .e_entry = paddr,
			 .e_phoff = sizeof(Elf32_Ehdr),
			 .e_ehsize = sizeof(Elf32_Ehdr),
			 .e_phentsize = sizeof(Elf32_Phdr),
			 .e_phnum = 2};
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS32;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	memcpy(img, &eh, sizeof(eh));
	Elf32_Phdr load = {.p_type = PT_LOAD,
			   .p_offset = 0x1000,
			   .p_paddr = paddr,
			   .p_filesz = 0x80,
			   .p_memsz = 0x80};
	Elf32_Phdr nt = {.p_type = PT_NOTE, .p_offset = 0x800, .p_filesz = sizeof(struct note)};
	memcpy(img + eh.e_phoff, &load, sizeof(load));
	memcpy(img + eh.e_phoff + sizeof(load), &nt, sizeof(nt));
	struct note n = {4, 4, XEN_ELFNOTE_PHYS32_ENTRY, "Xen", pvh_entry};
	memcpy(img + 0x800, &n, sizeof(n));
	return 0x1080;
}

static size_t make_bzimage(uint16_t version, uint16_t xloadflags, uint8_t setup_sects)
{
	memset(img, 0, sizeof(img));
	img[0x1f1] = setup_sects;
	img[0x1fe] = 0x55;
	img[0x1ff] = 0xaa;
	img[0x200] = 0xeb;
	img[0x201] = 0x6a; /* header ends at 0x26c */
	memcpy(img + 0x202, "HdrS", 4);
	memcpy(img + 0x206, &version, 2);
	img[0x211] = 0x01; /* LOADED_HIGH */
	uint32_t initrd_max = 0x7fffffff, cmdline_size = 2047, init_size = 0x2000000;
	uint64_t pref = 0x1000000;
	memcpy(img + 0x22c, &initrd_max, 4);
	img[0x234] = 1;
	memcpy(img + 0x236, &xloadflags, 2);
	memcpy(img + 0x238, &cmdline_size, 4);
	memcpy(img + 0x258, &pref, 8);
	memcpy(img + 0x260, &init_size, 4);
	return IMG_SIZE;
}

static void expect_error(size_t len, const char *needle)
{
	struct kimage k;
	vs_err_t err = NULL;
	cr_assert_eq(kimage_parse(img, len, &k, &err), -1);
	cr_assert_not_null(err);
	cr_assert(strstr(err->msg, needle), "error `%s` lacks `%s`", err->msg, needle);
	vs_err_free(&err);
}

Test(image, pvh_elf64_uses_the_note_entry)
{
	size_t len = make_elf64(0x100000, 0x100000, true, 0x100010);
	struct kimage k;
	vs_err_t err = NULL;
	cr_assert_eq(kimage_parse(img, len, &k, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(k.kind, KIMAGE_PVH);
	cr_assert_eq(k.entry, 0x100010);
	cr_assert_eq(k.nsegs, 1);
	cr_assert_eq(k.segs[0].file_off, 0x1000);
	cr_assert_eq(k.segs[0].file_size, 0x100);
	cr_assert_eq(k.segs[0].mem_size, 0x2000);
	cr_assert_eq(k.load_start, 0x100000);
	cr_assert_eq(k.load_end, 0x102000);
}

Test(image, pvh_elf32)
{
	size_t len = make_elf32_pvh(0x200000, 0x200004);
	struct kimage k;
	vs_err_t err = NULL;
	cr_assert_eq(kimage_parse(img, len, &k, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(k.kind, KIMAGE_PVH);
	cr_assert_eq(k.entry, 0x200004);
	cr_assert_eq(k.load_end, 0x200080);
}

Test(image, elf64_without_note_is_a_vmlinux)
{
	size_t len = make_elf64(0x1000000, 0x1000000, false, 0);
	struct kimage k;
	vs_err_t err = NULL;
	cr_assert_eq(kimage_parse(img, len, &k, &err), 0);
	cr_assert_eq(k.kind, KIMAGE_ELF64);
	cr_assert_eq(k.entry, 0x1000000);
}

Test(image, elf32_without_note_is_refused)
{
	size_t len = make_elf32_pvh(0x200000, 0x200004);
	Elf32_Phdr nt;
	memcpy(&nt, img + sizeof(Elf32_Ehdr) + sizeof(Elf32_Phdr), sizeof(nt));
	nt.p_type = PT_NULL;
	memcpy(img + sizeof(Elf32_Ehdr) + sizeof(Elf32_Phdr), &nt, sizeof(nt));
	expect_error(len, "32-bit ELF without a PVH entry note");
}

Test(image, entry_outside_segments)
{
	expect_error(make_elf64(0x100000, 0x100000, true, 0x900000), "entry point 0x900000");
}

Test(image, segment_below_1mib)
{
	expect_error(make_elf64(0x8000, 0x8000, false, 0), "below 1 MiB");
}

Test(image, segment_outside_file)
{
	size_t len = make_elf64(0x100000, 0x100000, false, 0);
	expect_error(len - 1, "outside the file");
}

Test(image, phdrs_outside_file)
{
	make_elf64(0x100000, 0x100000, false, 0);
	Elf64_Ehdr eh;
	memcpy(&eh, img, sizeof(eh));
	eh.e_phoff = IMG_SIZE - 8;
	memcpy(img, &eh, sizeof(eh));
	expect_error(IMG_SIZE, "program headers lie outside");
}

Test(image, note_overrun)
{
	size_t len = make_elf64(0x100000, 0x100000, true, 0x100010);
	uint32_t huge = 0xfffffff0;
	memcpy(img + 0x800 + 4, &huge, 4); /* descsz */
	expect_error(len, "note runs past");
}

Test(image, filesz_larger_than_memsz)
{
	size_t len = make_elf64(0x100000, 0x100000, false, 0);
	Elf64_Phdr ph;
	memcpy(&ph, img + sizeof(Elf64_Ehdr), sizeof(ph));
	ph.p_memsz = 0x10;
	memcpy(img + sizeof(Elf64_Ehdr), &ph, sizeof(ph));
	expect_error(len, "larger in the file");
}

Test(image, wrong_machine)
{
	size_t len = make_elf64(0x100000, 0x100000, false, 0);
	uint16_t arm = EM_AARCH64;
	memcpy(img + 18, &arm, 2);
	expect_error(len, "not an x86-64 kernel");
}

Test(image, truncated_elf_header)
{
	make_elf64(0x100000, 0x100000, false, 0);
	expect_error(20, "truncated ELF header");
}

Test(image, bzimage_header)
{
	size_t len = make_bzimage(0x020f, 0x1, 0);
	struct kimage k;
	vs_err_t err = NULL;
	cr_assert_eq(kimage_parse(img, len, &k, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(k.kind, KIMAGE_BZIMAGE);
	cr_assert_eq(k.bz.setup_sects, 4, "0 setup_sects means 4");
	cr_assert_eq(k.segs[0].file_off, 5 * 512);
	cr_assert_eq(k.segs[0].paddr, 0x100000);
	cr_assert_eq(k.entry, 0x100200);
	cr_assert_eq(k.bz.header_end, 0x26c);
	cr_assert_eq(k.bz.cmdline_size, 2047);
	/* the decompressor needs init_size from its run address */
	cr_assert_eq(k.load_end, 0x1000000 + 0x2000000);
}

Test(image, bzimage_too_old)
{
	expect_error(make_bzimage(0x0205, 0x1, 4), "2.05 is too old");
}

Test(image, bzimage_without_64bit_entry)
{
	expect_error(make_bzimage(0x020f, 0x0, 4), "XLF_KERNEL_64");
}

Test(image, bzimage_bad_boot_flag)
{
	size_t len = make_bzimage(0x020f, 0x1, 4);
	img[0x1fe] = 0;
	expect_error(len, "boot flag");
}

Test(image, bzimage_setup_past_end)
{
	make_bzimage(0x020f, 0x1, 200);
	expect_error(IMG_SIZE, "no protected-mode kernel");
}

Test(image, not_a_kernel)
{
	memset(img, 'x', 1024);
	expect_error(1024, "not a kernel");
	expect_error(0, "not a kernel");
	expect_error(3, "not a kernel");
	memcpy(img,
	       "\x7f"
	       "ELF",
	       4); /* found by fuzz_kernel_image: ident cut short */
	expect_error(4, "truncated ELF header");
	expect_error(15, "truncated ELF header");
}

Test(image, every_truncation_is_an_error_or_valid)
{
	/* cut a valid image at every length: never a crash (ASan watches) */
	size_t full = make_elf64(0x100000, 0x100000, true, 0x100010);
	for (size_t len = 0; len < full; len++) {
		struct kimage k;
		vs_err_t err = NULL;
		int r = kimage_parse(img, len, &k, &err);
		cr_assert(r == -1 || r == 0);
		cr_assert_eq(r == -1, err != NULL);
		vs_err_free(&err);
	}
}
