/* virtio-blk's untrusted inputs without a VM: the --disk spec (user input) and request
 * framing over guest-shaped chains (guest input). Checks, besides crashes and UB: an
 * accepted request's data lies inside the chain's buffers on the right side (writable for
 * reads and get-id, readable for writes), its disk range inside the disk, its lengths add
 * up; an accepted spec has a path and a 20-byte-or-shorter id.
 *
 * Input: a first byte picks the part. 0: the rest is a spec string. Otherwise: a byte of
 * disk flags, a byte of disk size (2^n sectors), a byte of segment counts (out: low nibble,
 * in: high nibble, 1-8 each), one length byte per segment (x 1, or x 512 when its top bit
 * is set), then the bytes the segments are cut from, in order. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/virtio/blk_req.h"
#include "vmm/virtio/blk_spec.h"

#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void spec(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstring(data, size);
	if (!s)
		return;
	struct blk_spec sp;
	vs_err_t err = NULL;
	if (blk_spec_parse(s, &sp, &err) == 0) {
		if (!sp.path || !*sp.path || strchr(sp.path, ',') ||
		    strnlen(sp.id, sizeof(sp.id)) > VIRTIO_BLK_ID_BYTES)
			__builtin_trap();
		blk_spec_free(&sp);
	} else if (!err || !err->msg || sp.path) {
		__builtin_trap();
	}
	vs_err_free(&err);
	free(s);
}

static bool inside(const struct virtq_seg *segs, unsigned n, const void *p, size_t len)
{
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *b = segs[i].host;
		if ((const uint8_t *)p >= b && (const uint8_t *)p + len <= b + segs[i].len)
			return true;
	}
	return false;
}

static struct virtq_chain c;
static struct blk_req r;

static void request(const uint8_t *data, size_t size)
{
	if (size < 3)
		return;
	struct blk_geometry g = {
	    .ro = data[0] & 1,
	    .discard = data[0] & 2,
	    .write_zeroes = data[0] & 4,
	    .sectors = data[1] >= 64 ? UINT64_MAX >> (data[1] & 7) : 1ull << (data[1] % 48),
	};
	unsigned n_out = (data[2] & 7) + 1, n_in = (data[2] >> 4 & 7) + 1;
	data += 3, size -= 3;
	if (size < n_out + n_in)
		return;
	uint32_t lens[16];
	for (unsigned i = 0; i < n_out + n_in; i++)
		lens[i] = data[i] & 0x80 ? (data[i] & 0x7f) * 512u : data[i];
	data += n_out + n_in, size -= n_out + n_in;

	/* one exactly-sized heap copy, so ASan sees any access past the guest's bytes */
	uint8_t *mem = malloc(size ? size : 1);
	if (!mem)
		return;
	memcpy(mem, data, size);
	memset(&c, 0, sizeof(c));
	size_t at = 0;
	for (unsigned i = 0; i < n_out + n_in; i++) {
		uint32_t len = lens[i] <= size - at ? lens[i] : (uint32_t)(size - at);
		struct virtq_seg seg = {mem + at, len};
		at += len;
		if (i < n_out)
			c.out[c.n_out++] = seg, c.out_len += len;
		else
			c.in[c.n_in++] = seg, c.in_len += len;
	}

	vs_err_t err = NULL;
	if (blk_req_parse(&c, &g, &r, &err) < 0) {
		if (!err || !err->msg)
			__builtin_trap();
		vs_err_free(&err);
		free(mem);
		return;
	}
	if (!inside(c.in, c.n_in, r.status, 1))
		__builtin_trap();
	if (r.answer == BLK_ANSWER_IO) {
		bool to_guest = r.type == 0 || r.type == 8; /* IN, GET_ID */
		uint64_t sum = 0;
		for (unsigned i = 0; i < r.niov; i++) {
			if (!inside(to_guest ? c.in : c.out, to_guest ? c.n_in : c.n_out,
				    r.iov[i].iov_base, r.iov[i].iov_len))
				__builtin_trap();
			/* data never overlaps the status byte */
			uint8_t *b = r.iov[i].iov_base;
			if (r.status >= b && r.status < b + r.iov[i].iov_len)
				__builtin_trap();
			sum += r.iov[i].iov_len;
			memset(r.iov[i].iov_base, 0xee, r.iov[i].iov_len);
		}
		if ((r.type <= 1 || r.type == 8) && sum != r.len)
			__builtin_trap();
		if (r.type <= 1 && (r.offset % 512 || r.len % 512 || r.offset / 512 > g.sectors ||
				    r.len / 512 > g.sectors - r.offset / 512))
			__builtin_trap();
		for (unsigned i = 0; i < r.nranges; i++)
			if (r.ranges[i].offset / 512 > g.sectors ||
			    r.ranges[i].len / 512 > g.sectors - r.ranges[i].offset / 512)
				__builtin_trap();
		if (g.ro && r.type != 0 && r.type != 4 && r.type != 8)
			__builtin_trap(); /* only reads, flushes and get-id reach a read-only disk
					   */
	}
	*r.status = 0;
	(void)blk_req_bytes(&r);
	free(mem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] == 0)
		spec(data + 1, size - 1);
	else
		request(data + 1, size - 1);
	return 0;
}
