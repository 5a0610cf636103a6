/* Guest RAM: one lazy host mapping, split around the 32-bit MMIO hole. */
#ifndef VESSEL_VMM_MEMORY_H
#define VESSEL_VMM_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#define GUEST_MEM_MIN (2ULL << 20)
#define GUEST_HUGEPAGE (2ULL << 20)

/* guest_mem_map flags */
#define GUEST_MEM_HUGEPAGES 0x1 /* 2 MiB pages from the hugetlbfs pool, reserved up front */
/* RAM in a memfd mapped MAP_SHARED instead of anonymous memory: another process (a local
 * migration's destination, docs/migration.md) can be handed the fd and map the same pages */
#define GUEST_MEM_SHARED 0x2

struct guest_mem {
	uint8_t *host;	   /* ram_size bytes, MAP_NORESERVE */
	uint64_t ram_size; /* total RAM */
	uint64_t low_size; /* RAM below the MMIO hole; the rest sits at 4 GiB */
	/* Pages the VMM itself wrote (device workers), one bit per 4 KiB page of host, while
	 * tracking is on (diff snapshots, migration): KVM's dirty log sees only the guest's
	 * own writes. NULL: not tracking. */
	_Atomic(uint64_t) *dirty;
	bool huge; /* hugetlbfs pages: nothing smaller than 2 MiB can be given back */
	bool shared; /* in a memfd (fd, ours), MAP_SHARED: GUEST_MEM_SHARED or guest_mem_map_fd */
	int fd;
};

enum guest_region_type { GUEST_RAM = 1, GUEST_RESERVED = 2 };

struct guest_region {
	uint64_t addr, size;
	enum guest_region_type type;
};

#define GUEST_MEMMAP_MAX 4

/* The memory map the guest is told (e820 / PVH memmap): pure, for any RAM size. */
size_t guest_memmap(uint64_t ram_size, struct guest_region out[GUEST_MEMMAP_MAX]);

/* Checks a --memory value: page multiple, at least GUEST_MEM_MIN, at most host_ram. */
int guest_mem_check_size(uint64_t size, uint64_t host_ram, vs_err_t *err);

int guest_mem_map(struct guest_mem *m, uint64_t size, unsigned flags, vs_err_t *err);
/* Guest RAM from a snapshot's memory file, which must be exactly size bytes: MAP_PRIVATE,
 * so pages come in on demand, every clone of one snapshot shares them through the page
 * cache, and the guest's writes stay its own (the file is never written). */
int guest_mem_map_file(struct guest_mem *m, const char *path, uint64_t size, vs_err_t *err);
/* Guest RAM from a memfd another VMM handed over (a local migration): MAP_SHARED, so both
 * map the same pages; fd must be a memfd of exactly size bytes. The fd is duplicated: the
 * caller keeps its own. */
int guest_mem_map_fd(struct guest_mem *m, int fd, uint64_t size, vs_err_t *err);
void guest_mem_unmap(struct guest_mem *m);
/* Gives [p, p + len) of guest RAM back to the host (the balloon): the guest then reads
 * zeros, or a snapshot's memory file's bytes. Shared RAM is punched out of its memfd,
 * where MADV_DONTNEED would only drop this process's view of pages the file keeps. */
int guest_mem_discard(struct guest_mem *m, void *p, uint64_t len);
/* Offers guest RAM to KSM (MADV_MERGEABLE): the host's ksmd may then share identical
 * pages across VMs, copy-on-write. Refused on huge pages, which KSM does not scan. */
int guest_mem_merge(struct guest_mem *m, vs_err_t *err);

/* Host pointer for [gpa, gpa + len) if all of it is RAM, else NULL. */
void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/* Device-side dirty tracking. guest_mem_track_dirty starts (a cleared bitmap) or stops it;
 * guest_mem_mark_dirty records a VMM write to [gpa, gpa + len) (any thread; a no-op when
 * not tracking or outside RAM); guest_mem_take_dirty ORs the pages marked since the last
 * take into out (one bit per page of host offset, guest_mem_npages bits) and clears them. */
static inline uint64_t guest_mem_npages(const struct guest_mem *m)
{
	return m->ram_size / 4096;
}
int guest_mem_track_dirty(struct guest_mem *m, bool on, vs_err_t *err);
void guest_mem_mark_dirty(struct guest_mem *m, uint64_t gpa, uint64_t len);
void guest_mem_take_dirty(struct guest_mem *m, uint64_t *out);

/* One past the highest RAM address below the MMIO hole (where 32-bit things must fit). */
static inline uint64_t guest_mem_low_end(const struct guest_mem *m)
{
	return m->low_size;
}

#endif
