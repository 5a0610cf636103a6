/* virtio-balloon (virtio 1.x, 5.5): what the guest sends, parsed without touching memory.
 *
 * The inflate and deflate queues carry arrays of le32 page frame numbers (4 KiB pages,
 * whatever the guest's own page size); the statistics queue carries (le16 tag, le64 value)
 * pairs. Both come from a guest we do not trust: every PFN must name a 4 KiB page that
 * lies wholly in a RAM region of the guest's memory map (never the low reserved area with
 * the ACPI tables and the VM generation ID, never the MMIO hole), and unknown stat tags
 * are skipped, as the spec says. Pure code: the fuzzer and the unit tests drive it. */
#ifndef VESSEL_VMM_VIRTIO_BALLOON_SPEC_H
#define VESSEL_VMM_VIRTIO_BALLOON_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "vmm/memory.h"

#define VIRTIO_ID_BALLOON 5

/* feature bits (5.5.3) */
#define VIRTIO_BALLOON_F_MUST_TELL_HOST 0
#define VIRTIO_BALLOON_F_STATS_VQ 1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2
#define VIRTIO_BALLOON_F_FREE_PAGE_HINT 3
#define VIRTIO_BALLOON_F_PAGE_POISON 4
#define VIRTIO_BALLOON_F_REPORTING 5

#define BALLOON_PAGE_SHIFT 12
#define BALLOON_PAGE (1u << BALLOON_PAGE_SHIFT)

/* The queues a driver sets up are numbered densely over the features it accepted:
 * inflate, deflate, then stats (STATS_VQ), then reporting (REPORTING). */
enum balloon_queue { BQ_INFLATE, BQ_DEFLATE, BQ_STATS, BQ_REPORTING, BQ_NONE };
enum balloon_queue balloon_queue_role(unsigned qi, uint64_t features);
unsigned balloon_num_queues(uint64_t features);

/* The configuration space (5.5.4): num_pages is the host's target, actual the guest's
 * answer; the free-page-hint command and poison value are not offered (read as 0). */
#define BALLOON_CONFIG_SIZE 16
#define BALLOON_CONFIG_NUM_PAGES 0
#define BALLOON_CONFIG_ACTUAL 4

/* A run of contiguous guest pages, as a host offset range into guest RAM. */
struct balloon_range {
	uint64_t gpa;
	uint64_t len; /* bytes, a multiple of BALLOON_PAGE */
};

/* The PFN array buf[0..len) -> runs of contiguous pages (at most max; a caller with more
 * PFNs than max calls again with the rest: *used says how many bytes were taken). -1 with
 * err if len is not a multiple of 4 or a PFN is not RAM of a guest with ram_size bytes. */
int balloon_pfns_parse(const uint8_t *buf, size_t len, uint64_t ram_size, struct balloon_range *out,
		       size_t max, size_t *nout, size_t *used, vs_err_t *err);
/* Whether [gpa, gpa + len) lies wholly in one RAM region of the guest's map (both page
 * aligned, len > 0). */
bool balloon_range_is_ram(uint64_t gpa, uint64_t len, uint64_t ram_size);

/* Statistics tags (5.5.6.3); Firecracker's names in balloon_stat_names. */
enum {
	BALLOON_S_SWAP_IN,
	BALLOON_S_SWAP_OUT,
	BALLOON_S_MAJFLT,
	BALLOON_S_MINFLT,
	BALLOON_S_MEMFREE,
	BALLOON_S_MEMTOT,
	BALLOON_S_AVAIL,
	BALLOON_S_CACHES,
	BALLOON_S_HTLB_PGALLOC,
	BALLOON_S_HTLB_PGFAIL,
	BALLOON_S_OOM_KILL,
	BALLOON_S_ALLOC_STALL,
	BALLOON_S_ASYNC_SCAN,
	BALLOON_S_DIRECT_SCAN,
	BALLOON_S_ASYNC_RECLAIM,
	BALLOON_S_DIRECT_RECLAIM,
	BALLOON_S_NR,
};
extern const char *const balloon_stat_names[BALLOON_S_NR];
#define BALLOON_STAT_SIZE 10 /* le16 tag, le64 value, packed */

struct balloon_stats {
	uint64_t val[BALLOON_S_NR];
	uint32_t have; /* bit i: the guest reported tag i */
};
/* One statistics buffer -> out (tags the guest did not send keep have's bit clear; an
 * unknown tag is skipped). -1 with err if len is not a whole number of entries. */
int balloon_stats_parse(const uint8_t *buf, size_t len, struct balloon_stats *out, vs_err_t *err);

#endif
