#include "vmm/boot/image.h"

#include <elf.h>
#include <string.h>

#include "vmm/layout.h"

#define BZ_SETUP_HEADER 0x1f1
#define BZ_BOOT_FLAG 0x1fe
#define BZ_JUMP 0x200
#define BZ_MAGIC 0x202
#define BZ_VERSION 0x206
#define BZ_LOADFLAGS 0x211
#define BZ_INITRD_ADDR_MAX 0x22c
#define BZ_RELOCATABLE 0x234
#define BZ_XLOADFLAGS 0x236
#define BZ_CMDLINE_SIZE 0x238
#define BZ_PREF_ADDRESS 0x258
#define BZ_INIT_SIZE 0x260
#define BZ_MIN_HEADER 0x264

#define LOADED_HIGH 0x01
#define XLF_KERNEL_64 0x0001

const char *kimage_kind_name(enum kimage_kind k)
{
	switch (k) {
	case KIMAGE_PVH:
		return "PVH ELF";
	case KIMAGE_BZIMAGE:
		return "Linux bzImage";
	default:
		return "ELF vmlinux (64-bit entry)";
	}
}

static uint16_t rd16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

/* Is [off, off + size) inside a buffer of len bytes? */
static int in_buf(uint64_t off, uint64_t size, size_t len)
{
	return off <= len && size <= len - off;
}

static int parse_bzimage(const uint8_t *b, size_t len, struct kimage *k, vs_err_t *err)
{
	struct kimage_bzimage *bz = &k->bz;
	if (len < BZ_MIN_HEADER)
		return vs_err(err, 0, "not a kernel: bzImage setup header is truncated");
	if (rd16(b + BZ_BOOT_FLAG) != 0xaa55)
		return vs_err(err, 0, "not a kernel: bzImage boot flag is not 0xAA55");
	bz->version = rd16(b + BZ_VERSION);
	if (bz->version < 0x0206)
		return vs_err(
		    err, 0, "bzImage boot protocol %u.%02u is too old (vessel needs 2.06 or newer)",
		    bz->version >> 8, bz->version & 0xff);
	if (!(b[BZ_LOADFLAGS] & LOADED_HIGH))
		return vs_err(err, 0, "bzImage is a zImage (not LOADED_HIGH): unsupported");
	bz->xloadflags = rd16(b + BZ_XLOADFLAGS);
	if (!(bz->xloadflags & XLF_KERNEL_64))
		return vs_err(err, 0,
			      "bzImage has no 64-bit entry point (xloadflags lacks XLF_KERNEL_64)");
	bz->setup_sects = b[BZ_SETUP_HEADER] ? b[BZ_SETUP_HEADER] : 4;
	bz->relocatable = b[BZ_RELOCATABLE];
	bz->initrd_addr_max = rd32(b + BZ_INITRD_ADDR_MAX);
	bz->cmdline_size = rd32(b + BZ_CMDLINE_SIZE);
	bz->pref_address = bz->version >= 0x020a ? rd64(b + BZ_PREF_ADDRESS) : LAYOUT_HIMEM;
	bz->init_size = bz->version >= 0x020a ? rd32(b + BZ_INIT_SIZE) : 0;
	/* the jump at 0x200 skips exactly the setup header */
	bz->header_end = BZ_JUMP + 2 + b[BZ_JUMP + 1];
	if (bz->header_end > len)
		return vs_err(err, 0, "bzImage setup header runs past the end of the file");

	uint64_t setup_size = ((uint64_t)bz->setup_sects + 1) * 512;
	if (setup_size >= len)
		return vs_err(err, 0,
			      "bzImage has no protected-mode kernel after its %u setup sectors",
			      bz->setup_sects);
	k->kind = KIMAGE_BZIMAGE;
	k->nsegs = 1;
	k->segs[0] =
	    (struct kimage_seg){setup_size, len - setup_size, LAYOUT_HIMEM, len - setup_size};
	k->entry = LAYOUT_HIMEM + 0x200; /* startup_64 */
	k->load_start = LAYOUT_HIMEM;
	k->load_end = LAYOUT_HIMEM + (len - setup_size);
	/* The decompressor needs init_size bytes from where the kernel will run. */
	uint64_t run_at = bz->pref_address > LAYOUT_HIMEM ? bz->pref_address : LAYOUT_HIMEM;
	if (bz->init_size && run_at + bz->init_size > k->load_end)
		k->load_end = run_at + bz->init_size;
	return 0;
}

/* The ELF header fields both classes share, widened. */
struct elf_view {
	int is64;
	uint64_t entry, phoff;
	uint16_t phentsize, phnum;
};

static int elf_header(const uint8_t *b, size_t len, struct elf_view *v, vs_err_t *err)
{
	if (len < EI_NIDENT)
		return vs_err(err, 0, "not a kernel: truncated ELF header");
	int cls = b[EI_CLASS];
	if (cls != ELFCLASS64 && cls != ELFCLASS32)
		return vs_err(err, 0, "not a kernel: unknown ELF class %d", cls);
	if (b[EI_DATA] != ELFDATA2LSB)
		return vs_err(err, 0, "not a kernel: big-endian ELF");
	v->is64 = cls == ELFCLASS64;
	if (v->is64) {
		if (len < sizeof(Elf64_Ehdr))
			return vs_err(err, 0, "not a kernel: truncated ELF header");
		Elf64_Ehdr h;
		memcpy(&h, b, sizeof(h));
		if (h.e_machine != EM_X86_64)
			return vs_err(err, 0, "not an x86-64 kernel: ELF machine %u", h.e_machine);
		if (h.e_type != ET_EXEC)
			return vs_err(err, 0, "not a kernel: ELF type %u is not an executable",
				      h.e_type);
		v->entry = h.e_entry;
		v->phoff = h.e_phoff;
		v->phentsize = h.e_phentsize;
		v->phnum = h.e_phnum;
		if (v->phentsize != sizeof(Elf64_Phdr))
			return vs_err(err, 0, "bad ELF: program header size %u", v->phentsize);
	} else {
		if (len < sizeof(Elf32_Ehdr))
			return vs_err(err, 0, "not a kernel: truncated ELF header");
		Elf32_Ehdr h;
		memcpy(&h, b, sizeof(h));
		if (h.e_machine != EM_386 && h.e_machine != EM_X86_64)
			return vs_err(err, 0, "not an x86 kernel: ELF machine %u", h.e_machine);
		if (h.e_type != ET_EXEC)
			return vs_err(err, 0, "not a kernel: ELF type %u is not an executable",
				      h.e_type);
		v->entry = h.e_entry;
		v->phoff = h.e_phoff;
		v->phentsize = h.e_phentsize;
		v->phnum = h.e_phnum;
		if (v->phentsize != sizeof(Elf32_Phdr))
			return vs_err(err, 0, "bad ELF: program header size %u", v->phentsize);
	}
	if (v->phnum == 0)
		return vs_err(err, 0, "bad ELF: no program headers");
	if (!in_buf(v->phoff, (uint64_t)v->phnum * v->phentsize, len))
		return vs_err(err, 0, "bad ELF: program headers lie outside the file");
	return 0;
}

static void elf_phdr(const uint8_t *b, const struct elf_view *v, size_t i, Elf64_Phdr *out)
{
	const uint8_t *p = b + v->phoff + i * v->phentsize;
	if (v->is64) {
		memcpy(out, p, sizeof(*out));
		return;
	}
	Elf32_Phdr h;
	memcpy(&h, p, sizeof(h));
	*out = (Elf64_Phdr){.p_type = h.p_type,
			    .p_offset = h.p_offset,
			    .p_paddr = h.p_paddr,
			    .p_filesz = h.p_filesz,
			    .p_memsz = h.p_memsz};
}

/* Walks a PT_NOTE segment for Xen's PHYS32_ENTRY note. Returns 1 found, 0 not, -1 bad. */
static int find_pvh_note(const uint8_t *b, size_t len, uint64_t off, uint64_t size, uint64_t *entry,
			 vs_err_t *err)
{
	if (!in_buf(off, size, len))
		return vs_err(err, 0, "bad ELF: note segment lies outside the file");
	const uint8_t *p = b + off, *end = b + off + size;
	while ((size_t)(end - p) >= 12) {
		uint32_t namesz = rd32(p), descsz = rd32(p + 4), type = rd32(p + 8);
		uint64_t name_len = ((uint64_t)namesz + 3) & ~3ULL;
		uint64_t desc_len = ((uint64_t)descsz + 3) & ~3ULL;
		p += 12;
		if (name_len > (uint64_t)(end - p) || desc_len > (uint64_t)(end - p) - name_len)
			return vs_err(err, 0, "bad ELF: note runs past its segment");
		const uint8_t *name = p, *desc = p + name_len;
		p += name_len + desc_len;
		if (type != XEN_ELFNOTE_PHYS32_ENTRY || namesz != 4 || memcmp(name, "Xen", 4) != 0)
			continue;
		if (descsz == 4)
			*entry = rd32(desc);
		else if (descsz == 8)
			*entry = rd64(desc);
		else
			return vs_err(err, 0, "bad ELF: PVH entry note has %u bytes", descsz);
		return 1;
	}
	return 0;
}

static int parse_elf(const uint8_t *b, size_t len, struct kimage *k, vs_err_t *err)
{
	struct elf_view v = {0};
	if (elf_header(b, len, &v, err) < 0)
		return -1;
	uint64_t pvh_entry = 0;
	int has_pvh = 0;
	k->nsegs = 0;
	k->load_start = UINT64_MAX;
	k->load_end = 0;
	for (size_t i = 0; i < v.phnum; i++) {
		Elf64_Phdr ph;
		elf_phdr(b, &v, i, &ph);
		if (ph.p_type == PT_NOTE && !has_pvh) {
			has_pvh = find_pvh_note(b, len, ph.p_offset, ph.p_filesz, &pvh_entry, err);
			if (has_pvh < 0)
				return -1;
			continue;
		}
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		if (k->nsegs == KIMAGE_MAX_SEGS)
			return vs_err(err, 0, "bad ELF: more than %d loadable segments",
				      KIMAGE_MAX_SEGS);
		if (!in_buf(ph.p_offset, ph.p_filesz, len))
			return vs_err(err, 0, "bad ELF: segment %zu lies outside the file", i);
		if (ph.p_filesz > ph.p_memsz)
			return vs_err(
			    err, 0, "bad ELF: segment %zu is larger in the file than in memory", i);
		if (ph.p_paddr + ph.p_memsz < ph.p_paddr)
			return vs_err(err, 0, "bad ELF: segment %zu wraps around", i);
		if (ph.p_paddr < LAYOUT_HIMEM)
			return vs_err(err, 0,
				      "ELF segment %zu loads at 0x%llx, below 1 MiB (link it at "
				      "0x100000 or above)",
				      i, (unsigned long long)ph.p_paddr);
		k->segs[k->nsegs++] =
		    (struct kimage_seg){ph.p_offset, ph.p_filesz, ph.p_paddr, ph.p_memsz};
		if (ph.p_paddr < k->load_start)
			k->load_start = ph.p_paddr;
		if (ph.p_paddr + ph.p_memsz > k->load_end)
			k->load_end = ph.p_paddr + ph.p_memsz;
	}
	if (k->nsegs == 0)
		return vs_err(err, 0, "bad ELF: no loadable segment");
	if (has_pvh) {
		k->kind = KIMAGE_PVH;
		k->entry = pvh_entry;
	} else if (v.is64) {
		k->kind = KIMAGE_ELF64;
		k->entry = v.entry;
	} else {
		return vs_err(err, 0,
			      "32-bit ELF without a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY): no "
			      "way to boot it");
	}
	/* the entry must be in a loaded segment, or the first instruction is garbage */
	for (size_t i = 0; i < k->nsegs; i++)
		if (k->entry >= k->segs[i].paddr &&
		    k->entry - k->segs[i].paddr < k->segs[i].mem_size)
			return 0;
	return vs_err(err, 0, "bad ELF: entry point 0x%llx is outside every loaded segment",
		      (unsigned long long)k->entry);
}

int kimage_parse(const uint8_t *buf, size_t len, struct kimage *out, vs_err_t *err)
{
	memset(out, 0, sizeof(*out));
	if (len >= SELFMAG && memcmp(buf, ELFMAG, SELFMAG) == 0)
		return parse_elf(buf, len, out, err);
	if (len >= BZ_MAGIC + 4 && memcmp(buf + BZ_MAGIC, "HdrS", 4) == 0)
		return parse_bzimage(buf, len, out, err);
	return vs_err(err, 0,
		      "not a kernel: neither ELF nor a Linux bzImage (vessel boots PVH ELF, bzImage and ELF vmlinux files)");
}
