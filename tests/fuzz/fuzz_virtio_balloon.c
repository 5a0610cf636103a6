/* virtio-balloon's untrusted inputs without a VM: the --balloon spec (user input), the
 * inflate/deflate queues' PFN arrays and the statistics buffers (guest input). Checks,
 * besides crashes and UB: every run of pages taken is wholly guest RAM by the memory map,
 * and the runs hold exactly the PFNs consumed; an accepted spec is within its bounds.
 *
 * Input: a first byte picks the part. 0: the rest is a spec string. 1: two bytes pick the
 * guest's RAM size (MiB, 2..65537: below and above the MMIO hole), one the run budget,
 * then the PFN array. 2: a statistics buffer. 3: queue roles for a feature byte. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/virtio/balloon.h"
#include "vmm/virtio/balloon_spec.h"

#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void spec(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstring(data, size);
	if (!s)
		return;
	struct balloon_config c;
	vs_err_t err = NULL;
	if (balloon_config_parse(s, &c, &err) == 0) {
		if (c.amount_mib > (UINT32_MAX >> 8) || c.stats_s > 86400)
			__builtin_trap();
	} else if (!err || !err->msg || strchr(err->msg, '\n')) {
		__builtin_trap();
	}
	vs_err_free(&err);
	free(s);
}

static void pfns(const uint8_t *data, size_t size)
{
	if (size < 3)
		return;
	uint64_t ram = ((uint64_t)(data[0] | data[1] << 8) + 2) << 20;
	size_t max = (size_t)data[2] % 64 + 1;
	data += 3;
	size -= 3;
	struct balloon_range r[64];
	size_t n, used;
	vs_err_t err = NULL;
	if (balloon_pfns_parse(data, size, ram, r, max, &n, &used, &err) < 0) {
		if (!err || !err->msg)
			__builtin_trap();
		vs_err_free(&err);
		return;
	}
	if (n > max || used > size || used % 4 || (n == 0 && used) || (used < size && n != max))
		__builtin_trap();
	uint64_t pages = 0;
	for (size_t i = 0; i < n; i++) {
		if (!balloon_range_is_ram(r[i].gpa, r[i].len, ram) || r[i].len % BALLOON_PAGE)
			__builtin_trap();
		pages += r[i].len / BALLOON_PAGE;
	}
	if (pages != used / 4)
		__builtin_trap();
	/* and each consumed PFN lies in some run */
	for (size_t off = 0; off < used; off += 4) {
		uint64_t gpa = (uint64_t)(data[off] | data[off + 1] << 8 | data[off + 2] << 16 |
					  (uint32_t)data[off + 3] << 24)
			       << BALLOON_PAGE_SHIFT;
		bool in = false;
		for (size_t i = 0; i < n && !in; i++)
			in = gpa >= r[i].gpa && gpa < r[i].gpa + r[i].len;
		if (!in)
			__builtin_trap();
	}
}

static void stats(const uint8_t *data, size_t size)
{
	struct balloon_stats s = {0};
	vs_err_t err = NULL;
	int rc = balloon_stats_parse(data, size, &s, &err);
	if ((rc < 0) != (size % BALLOON_STAT_SIZE != 0))
		__builtin_trap();
	if (rc == 0 && (s.have >> BALLOON_S_NR))
		__builtin_trap();
	vs_err_free(&err);
}

static void roles(const uint8_t *data, size_t size)
{
	if (size < 1)
		return;
	uint64_t f = data[0];
	unsigned n = balloon_num_queues(f), seen = 0;
	for (unsigned qi = 0; qi < 8; qi++) {
		enum balloon_queue q = balloon_queue_role(qi, f);
		if ((qi < n) != (q != BQ_NONE))
			__builtin_trap();
		if (q != BQ_NONE) {
			if (seen & (1u << q))
				__builtin_trap();
			seen |= 1u << q;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0:
		spec(data + 1, size - 1);
		break;
	case 1:
		pfns(data + 1, size - 1);
		break;
	case 2:
		stats(data + 1, size - 1);
		break;
	default:
		roles(data + 1, size - 1);
	}
	return 0;
}
