/* virtio-blk request framing and checks: pure, so unit tests and the fuzzer drive it. */
#include "vmm/virtio/blk_req.h"

#include <endian.h>
#include <linux/virtio_blk.h>
#include <string.h>

/* Copies `len` bytes starting `skip` bytes into the segments; false if they run short. */
static bool gather(const struct virtq_seg *segs, unsigned n, uint64_t skip, void *dst, uint64_t len)
{
	uint8_t *d = dst;
	for (unsigned i = 0; i < n && len; i++) {
		if (skip >= segs[i].len) {
			skip -= segs[i].len;
			continue;
		}
		uint64_t take = segs[i].len - skip;
		if (take > len)
			take = len;
		memcpy(d, (const uint8_t *)segs[i].host + skip, take);
		d += take;
		len -= take;
		skip = 0;
	}
	return len == 0;
}

/* iovecs for `len` bytes from `skip` bytes into the segments. */
static void to_iov(const struct virtq_seg *segs, unsigned n, uint64_t skip, uint64_t len,
		   struct blk_req *r)
{
	r->niov = 0;
	for (unsigned i = 0; i < n && len; i++) {
		if (skip >= segs[i].len) {
			skip -= segs[i].len;
			continue;
		}
		uint64_t take = segs[i].len - skip;
		if (take > len)
			take = len;
		r->iov[r->niov++] = (struct iovec){(uint8_t *)segs[i].host + skip, (size_t)take};
		len -= take;
		skip = 0;
	}
}

/* In the disk, and its byte offsets representable (a disk never has 2^55 sectors, but
 * the checks should not lean on that). */
static bool range_ok(const struct blk_geometry *g, uint64_t sector, uint64_t sectors)
{
	uint64_t max = UINT64_MAX >> BLK_SECTOR_SHIFT;
	uint64_t end = g->sectors < max ? g->sectors : max;
	return sector <= end && sectors <= end - sector;
}

static int parse_rw(const struct virtq_chain *c, const struct blk_geometry *g, uint64_t sector,
		    struct blk_req *r, vs_err_t *err)
{
	bool read = r->type == VIRTIO_BLK_T_IN;
	uint64_t data = read ? c->in_len - 1 : c->out_len - BLK_HDR_SIZE;
	if (read && c->out_len > BLK_HDR_SIZE)
		return vs_err(err, 0, "read request with %llu device-readable data bytes",
			      (unsigned long long)(c->out_len - BLK_HDR_SIZE));
	if (!read && c->in_len > 1)
		return vs_err(err, 0, "write request with %llu device-writable data bytes",
			      (unsigned long long)(c->in_len - 1));
	if (!read && g->ro)
		return r->answer = VIRTIO_BLK_S_IOERR, 0;
	if (data % BLK_SECTOR_SIZE || !range_ok(g, sector, data >> BLK_SECTOR_SHIFT))
		return r->answer = VIRTIO_BLK_S_IOERR, 0;
	r->offset = sector << BLK_SECTOR_SHIFT;
	r->len = data;
	if (data == 0)
		return r->answer = VIRTIO_BLK_S_OK, 0;
	if (read)
		to_iov(c->in, c->n_in, 0, data, r);
	else
		to_iov(c->out, c->n_out, BLK_HDR_SIZE, data, r);
	return 0;
}

static int parse_ranges(const struct virtq_chain *c, const struct blk_geometry *g,
			struct blk_req *r, vs_err_t *err)
{
	bool discard = r->type == VIRTIO_BLK_T_DISCARD;
	if (c->in_len > 1)
		return vs_err(err, 0, "%s request with %llu device-writable data bytes",
			      discard ? "discard" : "write-zeroes",
			      (unsigned long long)(c->in_len - 1));
	if (g->ro || !(discard ? g->discard : g->write_zeroes))
		return r->answer = VIRTIO_BLK_S_UNSUPP, 0;
	uint64_t data = c->out_len - BLK_HDR_SIZE;
	struct virtio_blk_discard_write_zeroes seg;
	if (data == 0 || data % sizeof(seg) || data / sizeof(seg) > BLK_MAX_RANGES)
		return r->answer = VIRTIO_BLK_S_IOERR, 0;
	r->nranges = (unsigned)(data / sizeof(seg));
	for (unsigned i = 0; i < r->nranges; i++) {
		if (!gather(c->out, c->n_out, BLK_HDR_SIZE + i * sizeof(seg), &seg, sizeof(seg)))
			return vs_err(err, 0, "discard range %u is cut short", i);
		uint64_t sector = le64toh(seg.sector);
		uint32_t n = le32toh(seg.num_sectors), flags = le32toh(seg.flags);
		bool unmap = flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
		/* unmap is write-zeroes' flag; on discard, and any other bit, it is unknown */
		if ((flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) || (discard && unmap))
			return r->answer = VIRTIO_BLK_S_UNSUPP, 0;
		if (n > BLK_MAX_RANGE_SECTORS || !range_ok(g, sector, n))
			return r->answer = VIRTIO_BLK_S_IOERR, 0;
		r->ranges[i] = (struct blk_range){sector << BLK_SECTOR_SHIFT,
						  (uint64_t)n << BLK_SECTOR_SHIFT, unmap};
	}
	return 0;
}

int blk_req_parse(const struct virtq_chain *c, const struct blk_geometry *g, struct blk_req *r,
		  vs_err_t *err)
{
	r->head = c->head;
	r->answer = BLK_ANSWER_IO;
	r->niov = r->nranges = 0;
	r->offset = r->len = 0;
	r->status = NULL;
	if (c->out_len < BLK_HDR_SIZE)
		return vs_err(err, 0, "request header is %llu bytes, not %d",
			      (unsigned long long)c->out_len, BLK_HDR_SIZE);
	if (c->in_len < 1 || c->n_in == 0)
		return vs_err(err, 0, "request has no device-writable status byte");
	const struct virtq_seg *last = &c->in[c->n_in - 1];
	if (last->len == 0)
		return vs_err(err, 0, "request ends in an empty segment");
	r->status = (uint8_t *)last->host + last->len - 1;

	struct virtio_blk_outhdr hdr;
	if (!gather(c->out, c->n_out, 0, &hdr, sizeof(hdr)))
		return vs_err(err, 0, "request header is cut short");
	r->type = le32toh(hdr.type);
	uint64_t sector = le64toh(hdr.sector);

	switch (r->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		return parse_rw(c, g, sector, r, err);
	case VIRTIO_BLK_T_FLUSH:
		if (g->ro)
			r->answer = VIRTIO_BLK_S_OK; /* nothing could be dirty */
		return 0;
	case VIRTIO_BLK_T_GET_ID:
		if (c->out_len > BLK_HDR_SIZE)
			return vs_err(err, 0, "get-id request with device-readable data");
		r->len = c->in_len - 1 < VIRTIO_BLK_ID_BYTES ? c->in_len - 1 : VIRTIO_BLK_ID_BYTES;
		if (r->len == 0)
			return r->answer = VIRTIO_BLK_S_IOERR, 0;
		to_iov(c->in, c->n_in, 0, r->len, r);
		return 0;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return parse_ranges(c, g, r, err);
	default:
		r->answer = VIRTIO_BLK_S_UNSUPP;
		return 0;
	}
}

bool blk_req_within(const struct blk_req *r, const struct blk_geometry *g)
{
	if (r->answer != BLK_ANSWER_IO)
		return true;
	if (r->type == VIRTIO_BLK_T_IN || r->type == VIRTIO_BLK_T_OUT)
		return range_ok(g, r->offset >> BLK_SECTOR_SHIFT, r->len >> BLK_SECTOR_SHIFT);
	for (unsigned i = 0; i < r->nranges; i++)
		if (!range_ok(g, r->ranges[i].offset >> BLK_SECTOR_SHIFT,
			      r->ranges[i].len >> BLK_SECTOR_SHIFT))
			return false;
	return true;
}

uint64_t blk_req_bytes(const struct blk_req *r)
{
	if (r->type == VIRTIO_BLK_T_IN || r->type == VIRTIO_BLK_T_OUT)
		return r->len;
	return 0;
}
