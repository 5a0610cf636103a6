#include "vmm/virtio/balloon_spec.h"

#include <string.h>

const char *const balloon_stat_names[BALLOON_S_NR] = {
    "swap_in",	      "swap_out",	  "major_faults", "minor_faults",	 "free_memory",
    "total_memory",   "available_memory", "disk_caches",  "hugetlb_allocations", "hugetlb_failures",
    "oom_kill",	      "alloc_stall",	  "async_scan",	  "direct_scan",	 "async_reclaim",
    "direct_reclaim",
};

enum balloon_queue balloon_queue_role(unsigned qi, uint64_t features)
{
	static const enum balloon_queue order[] = {BQ_INFLATE, BQ_DEFLATE, BQ_STATS, BQ_REPORTING};
	unsigned n = 0;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (order[i] == BQ_STATS && !(features & (1ULL << VIRTIO_BALLOON_F_STATS_VQ)))
			continue;
		if (order[i] == BQ_REPORTING && !(features & (1ULL << VIRTIO_BALLOON_F_REPORTING)))
			continue;
		if (n++ == qi)
			return order[i];
	}
	return BQ_NONE;
}

unsigned balloon_num_queues(uint64_t features)
{
	return 2 + !!(features & (1ULL << VIRTIO_BALLOON_F_STATS_VQ)) +
	       !!(features & (1ULL << VIRTIO_BALLOON_F_REPORTING));
}

bool balloon_range_is_ram(uint64_t gpa, uint64_t len, uint64_t ram_size)
{
	struct guest_region map[GUEST_MEMMAP_MAX];
	size_t n = guest_memmap(ram_size, map);
	if (len == 0 || gpa % BALLOON_PAGE || len % BALLOON_PAGE || gpa + len < gpa)
		return false;
	for (size_t i = 0; i < n; i++)
		if (map[i].type == GUEST_RAM && gpa >= map[i].addr &&
		    gpa + len <= map[i].addr + map[i].size)
			return true;
	return false;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int balloon_pfns_parse(const uint8_t *buf, size_t len, uint64_t ram_size, struct balloon_range *out,
		       size_t max, size_t *nout, size_t *used, vs_err_t *err)
{
	*nout = 0;
	*used = 0;
	if (len % 4)
		return vs_err(err, 0, "a PFN array of %zu bytes (not a multiple of 4)", len);
	size_t n = 0, off = 0;
	for (; off < len; off += 4) {
		uint64_t gpa = (uint64_t)le32(buf + off) << BALLOON_PAGE_SHIFT;
		if (!balloon_range_is_ram(gpa, BALLOON_PAGE, ram_size))
			return vs_err(err, 0, "PFN %#llx is not guest RAM",
				      (unsigned long long)(gpa >> BALLOON_PAGE_SHIFT));
		/* a page that continues the last run joins it if the run stays in one region */
		if (n && out[n - 1].gpa + out[n - 1].len == gpa &&
		    balloon_range_is_ram(out[n - 1].gpa, out[n - 1].len + BALLOON_PAGE, ram_size)) {
			out[n - 1].len += BALLOON_PAGE;
			continue;
		}
		if (n == max)
			break;
		out[n++] = (struct balloon_range){gpa, BALLOON_PAGE};
	}
	*nout = n;
	*used = off;
	return 0;
}

int balloon_stats_parse(const uint8_t *buf, size_t len, struct balloon_stats *out, vs_err_t *err)
{
	if (len % BALLOON_STAT_SIZE)
		return vs_err(err, 0, "a statistics buffer of %zu bytes (not entries of %d)", len,
			      BALLOON_STAT_SIZE);
	for (size_t off = 0; off < len; off += BALLOON_STAT_SIZE) {
		unsigned tag = (unsigned)buf[off] | (unsigned)buf[off + 1] << 8;
		uint64_t v = 0;
		for (int i = 7; i >= 0; i--)
			v = v << 8 | buf[off + 2 + i];
		if (tag >= BALLOON_S_NR)
			continue; /* a newer guest's tag: the spec says to ignore it */
		out->val[tag] = v;
		out->have |= 1u << tag;
	}
	return 0;
}
