#include "vmm/memory.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "vmm/layout.h"

size_t guest_memmap(uint64_t ram_size, struct guest_region out[GUEST_MEMMAP_MAX])
{
	size_t n = 0;
	uint64_t low = ram_size < LAYOUT_MMIO_HOLE ? ram_size : LAYOUT_MMIO_HOLE;
	out[n++] = (struct guest_region){0, LAYOUT_LOWMEM_END, GUEST_RAM};
	out[n++] = (struct guest_region){LAYOUT_LOWMEM_END, LAYOUT_HIMEM - LAYOUT_LOWMEM_END,
					 GUEST_RESERVED};
	if (low > LAYOUT_HIMEM)
		out[n++] = (struct guest_region){LAYOUT_HIMEM, low - LAYOUT_HIMEM, GUEST_RAM};
	if (ram_size > low)
		out[n++] = (struct guest_region){LAYOUT_4G, ram_size - low, GUEST_RAM};
	return n;
}

int guest_mem_check_size(uint64_t size, uint64_t host_ram, vs_err_t *err)
{
	if (size % 4096)
		return vs_err(err, 0,
			      "--memory %llu bytes: must be a multiple of 4 KiB (e.g. 128M)",
			      (unsigned long long)size);
	if (size < GUEST_MEM_MIN)
		return vs_err(err, 0,
			      "--memory %llu KiB: too small, a guest needs at least %llu MiB",
			      (unsigned long long)(size >> 10), GUEST_MEM_MIN >> 20);
	if (host_ram && size > host_ram)
		return vs_err(
		    err, 0, "--memory %llu MiB: more than this host's %llu MiB of RAM (give less)",
		    (unsigned long long)(size >> 20), (unsigned long long)(host_ram >> 20));
	return 0;
}

/* Guest RAM has no business in a core dump of the VMM, nor in a child. */
static void adopt(struct guest_mem *m, void *p, uint64_t size)
{
	madvise(p, size, MADV_DONTDUMP);
	madvise(p, size, MADV_DONTFORK);
	m->host = p;
	m->ram_size = size;
	m->low_size = size < LAYOUT_MMIO_HOLE ? size : LAYOUT_MMIO_HOLE;
	m->shared = false;
	m->fd = -1;
}

/* The memfd behind GUEST_MEM_SHARED: named, so /proc/PID/maps says what the mapping is */
static int shared_ram(struct guest_mem *m, uint64_t size, bool huge, vs_err_t *err)
{
	int fd = memfd_create("vessel-guest-ram", MFD_CLOEXEC | (huge ? MFD_HUGETLB : 0));
	if (fd < 0)
		return vs_err(err, errno, "memfd_create for %llu MiB of shared guest RAM",
			      (unsigned long long)(size >> 20));
	if (ftruncate(fd, (off_t)size) < 0) {
		int e = errno;
		close(fd);
		return vs_err(err, e, "size the guest RAM's memfd to %llu MiB",
			      (unsigned long long)(size >> 20));
	}
	/* hugetlb: MAP_SHARED reserves the pool's pages here (no MAP_NORESERVE), as the
	 * anonymous mapping does */
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | (huge ? 0 : MAP_NORESERVE),
		       fd, 0);
	if (p == MAP_FAILED) {
		int e = errno;
		close(fd);
		if (huge)
			return vs_err(err, e,
				      "--hugepages: cannot reserve %llu huge pages of 2 MiB for "
				      "shared RAM (raise /proc/sys/vm/nr_hugepages)",
				      (unsigned long long)(size / GUEST_HUGEPAGE));
		return vs_err(err, e, "mmap %llu MiB of shared guest RAM",
			      (unsigned long long)(size >> 20));
	}
	adopt(m, p, size);
	m->shared = true;
	m->fd = fd;
	m->huge = huge;
	return 0;
}

int guest_mem_map(struct guest_mem *m, uint64_t size, unsigned flags, vs_err_t *err)
{
	/* MAP_NORESERVE and no pre-faulting: the host only pays for what the guest touches.
	 * Huge pages are the exception: without a reservation an empty pool would be a
	 * SIGBUS at the guest's first touch, so they are reserved here or refused. */
	int mflags = MAP_PRIVATE | MAP_ANONYMOUS;
	if (flags & GUEST_MEM_HUGEPAGES) {
		if (size % GUEST_HUGEPAGE)
			return vs_err(err, 0, "huge pages: %llu bytes is not a multiple of 2 MiB",
				      (unsigned long long)size);
		mflags |= MAP_HUGETLB;
	} else {
		mflags |= MAP_NORESERVE;
	}
	if (flags & GUEST_MEM_SHARED)
		return shared_ram(m, size, flags & GUEST_MEM_HUGEPAGES, err);
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, mflags, -1, 0);
	if (p == MAP_FAILED && (flags & GUEST_MEM_HUGEPAGES))
		return vs_err(err, errno,
			      "--hugepages: cannot reserve %llu huge pages of 2 MiB (raise "
			      "/proc/sys/vm/nr_hugepages)",
			      (unsigned long long)(size / GUEST_HUGEPAGE));
	if (p == MAP_FAILED)
		return vs_err(err, errno, "mmap %llu MiB of guest RAM",
			      (unsigned long long)(size >> 20));
	adopt(m, p, size);
	m->huge = flags & GUEST_MEM_HUGEPAGES;
	return 0;
}

int guest_mem_map_file(struct guest_mem *m, const char *path, uint64_t size, vs_err_t *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vs_err(err, errno, "memory file `%s`", path);
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return vs_err(err, e, "stat memory file `%s`", path);
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != size) {
		close(fd);
		return vs_err(err, 0,
			      "memory file `%s` is %lld bytes, the snapshot's guest has %llu bytes "
			      "of RAM",
			      path, (long long)st.st_size, (unsigned long long)size);
	}
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
	int e = errno;
	close(fd); /* the mapping keeps the file */
	if (p == MAP_FAILED)
		return vs_err(err, e, "mmap memory file `%s`", path);
	adopt(m, p, size);
	return 0;
}

int guest_mem_map_fd(struct guest_mem *m, int fd, uint64_t size, vs_err_t *err)
{
	struct stat st;
	struct statfs sf;
	if (fstat(fd, &st) < 0 || fstatfs(fd, &sf) < 0)
		return vs_err(err, errno, "stat the guest RAM's fd");
	/* only a memfd has seals to ask about (a file elsewhere: EINVAL): anything else,
	 * a disk file, a device, would not be RAM to share */
	if (!S_ISREG(st.st_mode) || fcntl(fd, F_GET_SEALS) < 0)
		return vs_err(err, 0, "the guest RAM's fd is not a memfd");
	if ((uint64_t)st.st_size != size)
		return vs_err(err, 0, "the guest RAM's memfd is %lld bytes, the VM has %llu",
			      (long long)st.st_size, (unsigned long long)size);
	bool huge = sf.f_type == HUGETLBFS_MAGIC;
	int own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (own < 0)
		return vs_err(err, errno, "dup the guest RAM's memfd");
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | (huge ? 0 : MAP_NORESERVE),
		       own, 0);
	if (p == MAP_FAILED) {
		int e = errno;
		close(own);
		return vs_err(err, e, "mmap the guest RAM's memfd (%llu MiB)",
			      (unsigned long long)(size >> 20));
	}
	adopt(m, p, size);
	m->shared = true;
	m->fd = own;
	m->huge = huge;
	return 0;
}

int guest_mem_discard(struct guest_mem *m, void *p, uint64_t len)
{
	return madvise(p, len, m->shared ? MADV_REMOVE : MADV_DONTNEED);
}

int guest_mem_merge(struct guest_mem *m, vs_err_t *err)
{
	if (m->huge)
		return vs_err(err, 0, "--merge: KSM does not merge huge pages (drop --hugepages)");
	if (m->shared)
		return vs_err(err, 0,
			      "--merge: KSM merges only private memory, not shared RAM (drop "
			      "--shared-memory)");
	if (madvise(m->host, m->ram_size, MADV_MERGEABLE) < 0)
		return vs_err(err, errno,
			      "--merge: madvise(MADV_MERGEABLE) of %llu MiB of guest RAM (a kernel "
			      "without CONFIG_KSM?)",
			      (unsigned long long)(m->ram_size >> 20));
	return 0;
}

void guest_mem_unmap(struct guest_mem *m)
{
	if (m->host)
		munmap(m->host, m->ram_size);
	m->host = NULL;
	if (m->shared)
		close(m->fd);
	m->shared = false;
	m->fd = -1;
	free((void *)m->dirty);
	m->dirty = NULL;
}

int guest_mem_track_dirty(struct guest_mem *m, bool on, vs_err_t *err)
{
	if (!on) {
		free((void *)m->dirty);
		m->dirty = NULL;
		return 0;
	}
	if (m->dirty)
		return 0;
	size_t words = (guest_mem_npages(m) + 63) / 64;
	m->dirty = calloc(words ? words : 1, sizeof(*m->dirty));
	if (!m->dirty)
		return vs_err(err, ENOMEM, "dirty page bitmap for %llu MiB of guest RAM",
			      (unsigned long long)(m->ram_size >> 20));
	return 0;
}

void guest_mem_mark_dirty(struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	if (!m->dirty || !len)
		return;
	uint8_t *p = guest_mem_ptr(m, gpa, len);
	if (!p)
		return;
	uint64_t first = (uint64_t)(p - m->host) / 4096;
	uint64_t last = ((uint64_t)(p - m->host) + len - 1) / 4096;
	for (uint64_t pg = first; pg <= last; pg++)
		atomic_fetch_or_explicit(&m->dirty[pg / 64], 1ULL << (pg % 64),
					 memory_order_relaxed);
}

void guest_mem_take_dirty(struct guest_mem *m, uint64_t *out)
{
	if (!m->dirty)
		return;
	size_t words = (guest_mem_npages(m) + 63) / 64;
	for (size_t i = 0; i < words; i++)
		out[i] |= atomic_exchange_explicit(&m->dirty[i], 0, memory_order_relaxed);
}

void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	if (!m->host || len > m->ram_size)
		return NULL;
	if (gpa < m->low_size) {
		if (len > m->low_size - gpa)
			return NULL;
		return m->host + gpa;
	}
	if (gpa < LAYOUT_4G)
		return NULL;
	uint64_t high = m->ram_size - m->low_size, off = gpa - LAYOUT_4G;
	if (off >= high || len > high - off)
		return NULL;
	return m->host + m->low_size + off;
}
