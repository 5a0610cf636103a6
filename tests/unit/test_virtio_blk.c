/* virtio-blk request framing and --disk parsing, over plain host buffers standing in for
 * guest memory (the queue walker's own checks are test_virtio_queue's). */
#include <criterion/criterion.h>
#include <endian.h>
#include <linux/virtio_blk.h>
#include <string.h>

#include "vmm/virtio/blk_req.h"
#include "vmm/virtio/blk_spec.h"

static const struct blk_geometry disk = {.sectors = 2048, .discard = true, .write_zeroes = true};
static const struct blk_geometry ro_disk = {.sectors = 2048, .ro = true};

static struct virtio_blk_outhdr hdr;
static uint8_t data[8192], status, idbuf[32];
static struct virtio_blk_discard_write_zeroes ranges[BLK_MAX_RANGES + 1];
static struct virtq_chain c;
static struct blk_req r;

static void set_hdr(uint32_t type, uint64_t sector)
{
	hdr.type = htole32(type);
	hdr.ioprio = 0;
	hdr.sector = htole64(sector);
}

static void out(void *p, uint32_t len)
{
	c.out[c.n_out++] = (struct virtq_seg){p, len};
	c.out_len += len;
}

static void in(void *p, uint32_t len)
{
	c.in[c.n_in++] = (struct virtq_seg){p, len};
	c.in_len += len;
}

static void chain(uint16_t head)
{
	memset(&c, 0, sizeof(c));
	c.head = head;
}

static int parse(const struct blk_geometry *g, vs_err_t *err)
{
	return blk_req_parse(&c, g, &r, err);
}

Test(blk_req, read_lays_data_before_status)
{
	set_hdr(VIRTIO_BLK_T_IN, 8);
	chain(7);
	out(&hdr, sizeof(hdr));
	in(data, 4096);
	in(&status, 1);
	vs_err_t err = NULL;
	cr_assert_eq(parse(&disk, &err), 0);
	cr_assert_eq(r.head, 7);
	cr_assert_eq(r.answer, BLK_ANSWER_IO);
	cr_assert_eq(r.status, &status);
	cr_assert_eq(r.offset, 8 * 512);
	cr_assert_eq(r.len, 4096);
	cr_assert_eq(r.niov, 1);
	cr_assert_eq(r.iov[0].iov_base, data);
	cr_assert_eq(blk_req_bytes(&r), 4096);
}

Test(blk_req, status_shares_the_last_segment)
{
	/* header split over two segments, data and status in one writable buffer */
	set_hdr(VIRTIO_BLK_T_IN, 0);
	chain(0);
	out(&hdr, 5);
	out((uint8_t *)&hdr + 5, sizeof(hdr) - 5);
	in(data, 1024 + 1);
	vs_err_t err = NULL;
	cr_assert_eq(parse(&disk, &err), 0);
	cr_assert_eq(r.answer, BLK_ANSWER_IO);
	cr_assert_eq(r.status, data + 1024);
	cr_assert_eq(r.len, 1024);
	cr_assert_eq(r.niov, 1);
	cr_assert_eq(r.iov[0].iov_len, 1024);
}

Test(blk_req, write_takes_data_after_the_header)
{
	set_hdr(VIRTIO_BLK_T_OUT, 2047);
	chain(1);
	out(data, sizeof(hdr) + 512); /* header and data in one buffer */
	memcpy(data, &hdr, sizeof(hdr));
	in(&status, 1);
	vs_err_t err = NULL;
	cr_assert_eq(parse(&disk, &err), 0);
	cr_assert_eq(r.answer, BLK_ANSWER_IO);
	cr_assert_eq(r.iov[0].iov_base, data + sizeof(hdr));
	cr_assert_eq(r.len, 512);
	cr_assert_eq(r.offset, 2047 * 512);
}

Test(blk_req, short_header_breaks_the_device)
{
	set_hdr(VIRTIO_BLK_T_IN, 0);
	chain(0);
	out(&hdr, 12);
	in(&status, 1);
	vs_err_t err = NULL;
	cr_assert_eq(parse(&disk, &err), -1);
	cr_assert_str_eq(err->msg, "request header is 12 bytes, not 16");
	vs_err_free(&err);
}

Test(blk_req, missing_status_breaks_the_device)
{
	set_hdr(VIRTIO_BLK_T_FLUSH, 0);
	chain(0);
	out(&hdr, sizeof(hdr));
	vs_err_t err = NULL;
	cr_assert_eq(parse(&disk, &err), -1);
	cr_assert_str_eq(err->msg, "request has no device-writable status byte");
	vs_err_free(&err);
}

Test(blk_req, read_into_a_read_only_segment_breaks_the_device)
{
	set_hdr(VIRTIO_BLK_T_IN, 0);
	chain(0);
	out(&hdr, sizeof(hdr));
	out(data, 512); /* the data buffer is device-readable: the device could not fill it */
	in(&status, 1);
	vs_err_t err = NULL;
	cr_assert_eq(parse(&disk, &err), -1);
	cr_assert_str_eq(err->msg, "read request with 512 device-readable data bytes");
	vs_err_free(&err);
}

Test(blk_req, write_from_a_writable_segment_breaks_the_device)
{
	set_hdr(VIRTIO_BLK_T_OUT, 0);
	chain(0);
	out(&hdr, sizeof(hdr));
	in(data, 512);
	in(&status, 1);
	vs_err_t err = NULL;
	cr_assert_eq(parse(&disk, &err), -1);
	vs_err_free(&err);
}

Test(blk_req, past_the_end_is_ioerr)
{
	vs_err_t err = NULL;
	set_hdr(VIRTIO_BLK_T_IN, 2047); /* the last sector plus one more */
	chain(0);
	out(&hdr, sizeof(hdr));
	in(data, 1024);
	in(&status, 1);
	cr_assert_eq(parse(&disk, &err), 0);
	cr_assert_eq(r.answer, VIRTIO_BLK_S_IOERR);
	set_hdr(VIRTIO_BLK_T_IN, 2048); /* starts past the end */
	chain(0);
	out(&hdr, sizeof(hdr));
	in(data, 512);
	in(&status, 1);
	cr_assert_eq(parse(&disk, &err), 0);
	cr_assert_eq(r.answer, VIRTIO_BLK_S_IOERR);
	cr_assert_null(err);
}

Test(blk_req, sector_overflow_is_ioerr)
{
	vs_err_t err = NULL;
	uint64_t sectors[] = {UINT64_MAX, UINT64_MAX / 512 + 1, (UINT64_MAX >> 9) - 1, 1ull << 55};
	for (size_t i = 0; i < sizeof(sectors) / sizeof(sectors[0]); i++) {
		set_hdr(VIRTIO_BLK_T_OUT, sectors[i]);
		chain(0);
		out(&hdr, sizeof(hdr));
		out(data, 4096);
		in(&status, 1);
		cr_assert_eq(parse(&(struct blk_geometry){.sectors = UINT64_MAX >> 9}, &err), 0);
		cr_assert_eq(r.answer, VIRTIO_BLK_S_IOERR, "sector %llu",
			     (unsigned long long)sectors[i]);
	}
}

Test(blk_req, partial_sector_is_ioerr)
{
	vs_err_t err = NULL;
	set_hdr(VIRTIO_BLK_T_IN, 0);
	chain(0);
	out(&hdr, sizeof(hdr));
	in(data, 100);
	in(&status, 1);
	cr_assert_eq(parse(&disk, &err), 0);
	cr_assert_eq(r.answer, VIRTIO_BLK_S_IOERR);
}

Test(blk_req, write_to_read_only_disk_is_ioerr)
{
	vs_err_t err = NULL;
	set_hdr(VIRTIO_BLK_T_OUT, 0);
	chain(0);
	out(&hdr, sizeof(hdr));
	out(data, 512);
	in(&status, 1);
	cr_assert_eq(parse(&ro_disk, &err), 0);
	cr_assert_eq(r.answer, VIRTIO_BLK_S_IOERR);
	set_hdr(VIRTIO_BLK_T_IN, 0);
	chain(0);
	out(&hdr, sizeof(hdr));
	in(data, 512);
	in(&status, 1);
	cr_assert_eq(parse(&ro_disk, &err), 0);
	cr_assert_eq(r.answer, BLK_ANSWER_IO);
}

Test(blk_req, unknown_type_is_unsupp)
{
	vs_err_t err = NULL;
	set_hdr(VIRTIO_BLK_T_SCSI_CMD, 0);
	chain(0);
	out(&hdr, sizeof(hdr));
	in(&status, 1);
	cr_assert_eq(parse(&disk, &err), 0);
	cr_assert_eq(r.answer, VIRTIO_BLK_S_UNSUPP);
}

Test(blk_req, get_id_fills_at_most_20_bytes)
{
	vs_err_t err = NULL;
	set_hdr(VIRTIO_BLK_T_GET_ID, 0);
	chain(0);
	out(&hdr, sizeof(hdr));
	in(idbuf, sizeof(idbuf));
	in(&status, 1);
	cr_assert_eq(parse(&disk, &err), 0);
	cr_assert_eq(r.answer, BLK_ANSWER_IO);
	cr_assert_eq(r.len, VIRTIO_BLK_ID_BYTES);
	cr_assert_eq(blk_req_bytes(&r), 0);
	chain(0);
	out(&hdr, sizeof(hdr));
	in(&status, 1);
	cr_assert_eq(parse(&disk, &err), 0);
	cr_assert_eq(r.answer, VIRTIO_BLK_S_IOERR);
}

static void ranges_req(uint32_t type, unsigned n)
{
	set_hdr(type, 0);
	chain(3);
	out(&hdr, sizeof(hdr));
	out(ranges, n * sizeof(ranges[0]));
	in(&status, 1);
}

static void set_range(unsigned i, uint64_t sector, uint32_t n, uint32_t flags)
{
	ranges[i] =
	    (struct virtio_blk_discard_write_zeroes){htole64(sector), htole32(n), htole32(flags)};
}

Test(blk_req, discard_ranges_are_copied_and_checked)
{
	vs_err_t err = NULL;
	set_range(0, 0, 8, 0);
	set_range(1, 2040, 8, 0);
	ranges_req(VIRTIO_BLK_T_DISCARD, 2);
	cr_assert_eq(parse(&disk, &err), 0);
	cr_assert_eq(r.answer, BLK_ANSWER_IO);
	cr_assert_eq(r.nranges, 2);
	cr_assert_eq(r.ranges[1].offset, 2040 * 512);
	cr_assert_eq(r.ranges[1].len, 8 * 512);
	/* the guest changing its buffer afterwards changes nothing */
	set_range(1, 0, 1, 0);
	cr_assert_eq(r.ranges[1].offset, 2040 * 512);

	set_range(1, 2041, 8, 0); /* one sector past the end */
	ranges_req(VIRTIO_BLK_T_DISCARD, 2);
	cr_assert_eq(parse(&disk, &err), 0);
	cr_assert_eq(r.answer, VIRTIO_BLK_S_IOERR);

	set_range(1, UINT64_MAX - 2, 8, 0); /* sector + count wraps */
	ranges_req(VIRTIO_BLK_T_DISCARD, 2);
	cr_assert_eq(parse(&disk, &err), 0);
	cr_assert_eq(r.answer, VIRTIO_BLK_S_IOERR);
}

Test(blk_req, discard_segment_count_and_size)
{
	vs_err_t err = NULL;
	for (unsigned i = 0; i <= BLK_MAX_RANGES; i++)
		set_range(i, i, 1, 0);
	ranges_req(VIRTIO_BLK_T_DISCARD, BLK_MAX_RANGES);
	cr_assert_eq(parse(&disk, &err), 0);
	cr_assert_eq(r.answer, BLK_ANSWER_IO);
	ranges_req(VIRTIO_BLK_T_DISCARD, BLK_MAX_RANGES + 1);
	cr_assert_eq(parse(&disk, &err), 0);
	cr_assert_eq(r.answer, VIRTIO_BLK_S_IOERR);
	ranges_req(VIRTIO_BLK_T_DISCARD, 0);
	cr_assert_eq(parse(&disk, &err), 0);
	cr_assert_eq(r.answer, VIRTIO_BLK_S_IOERR);
	/* not a whole number of 16-byte ranges */
	set_hdr(VIRTIO_BLK_T_WRITE_ZEROES, 0);
	chain(0);
	out(&hdr, sizeof(hdr));
	out(ranges, 20);
	in(&status, 1);
	cr_assert_eq(parse(&disk, &err), 0);
	cr_assert_eq(r.answer, VIRTIO_BLK_S_IOERR);
	/* a range over the per-range limit */
	set_range(0, 0, BLK_MAX_RANGE_SECTORS + 1, 0);
	ranges_req(VIRTIO_BLK_T_WRITE_ZEROES, 1);
	cr_assert_eq(
	    parse(&(struct blk_geometry){.sectors = 1ull << 40, .write_zeroes = true}, &err), 0);
	cr_assert_eq(r.answer, VIRTIO_BLK_S_IOERR);
}

Test(blk_req, discard_flags)
{
	vs_err_t err = NULL;
	set_range(0, 0, 8, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
	ranges_req(VIRTIO_BLK_T_DISCARD, 1);
	cr_assert_eq(parse(&disk, &err), 0);
	cr_assert_eq(r.answer, VIRTIO_BLK_S_UNSUPP);
	ranges_req(VIRTIO_BLK_T_WRITE_ZEROES, 1);
	cr_assert_eq(parse(&disk, &err), 0);
	cr_assert_eq(r.answer, BLK_ANSWER_IO);
	cr_assert(r.ranges[0].unmap);
	set_range(0, 0, 8, 0x80);
	ranges_req(VIRTIO_BLK_T_WRITE_ZEROES, 1);
	cr_assert_eq(parse(&disk, &err), 0);
	cr_assert_eq(r.answer, VIRTIO_BLK_S_UNSUPP);
}

Test(blk_req, discard_with_writable_data_breaks_the_device)
{
	vs_err_t err = NULL;
	set_range(0, 0, 8, 0);
	set_hdr(VIRTIO_BLK_T_DISCARD, 0);
	chain(0);
	out(&hdr, sizeof(hdr));
	in(ranges, sizeof(ranges[0]));
	in(&status, 1);
	cr_assert_eq(parse(&disk, &err), -1);
	vs_err_free(&err);
}

Test(blk_req, discard_on_read_only_disk_is_unsupp)
{
	vs_err_t err = NULL;
	set_range(0, 0, 8, 0);
	ranges_req(VIRTIO_BLK_T_DISCARD, 1);
	cr_assert_eq(parse(&ro_disk, &err), 0);
	cr_assert_eq(r.answer, VIRTIO_BLK_S_UNSUPP);
}

Test(blk_spec, options)
{
	struct blk_spec s;
	vs_err_t err = NULL;
	cr_assert_eq(blk_spec_parse("/tmp/x.img,ro,id=root-disk,direct,bw=2M,iops=100", &s, &err),
		     0);
	cr_assert_str_eq(s.path, "/tmp/x.img");
	cr_assert(s.ro && s.direct && s.has_id);
	cr_assert_str_eq(s.id, "root-disk");
	cr_assert_eq(s.rl.bw.size, 2 << 20);
	cr_assert_eq(s.rl.ops.size, 100);
	blk_spec_free(&s);
	cr_assert_eq(blk_spec_parse("/dev/vdb", &s, &err), 0);
	cr_assert_not(s.ro || s.direct || s.has_id);
	cr_assert(rl_unlimited(&s.rl));
	blk_spec_free(&s);
}

static void bad(const char *spec, const char *msg)
{
	struct blk_spec s;
	vs_err_t err = NULL;
	cr_assert_eq(blk_spec_parse(spec, &s, &err), -1, "%s", spec);
	cr_assert_str_eq(err->msg, msg);
	cr_assert_null(s.path);
	vs_err_free(&err);
}

Test(blk_spec, bad_input_names_the_option)
{
	bad("/x,bw=fast", "bw: not a rate");
	bad("/x,iops=lots", "iops: not a rate");
	bad("/x,bw_burst=1M", "bw_burst: needs bw=");
	bad("", "needs a file or block device (PATH[,options])");
	bad(",ro", "needs a file or block device (PATH[,options])");
	bad("/x,ro=yes", "ro: takes no value");
	bad("/x,id=", "id: needs a name (id=NAME)");
	bad("/x,id=abcdefghijklmnopqrstu", "id: `abcdefghijklmnopqrstu` is longer than 20 bytes");
	bad("/x,id=a b", "id: `a b`: only printable ASCII without spaces");
	bad("/x,cache=none", "`cache`: unknown option (ro, id=NAME, direct, bw=RATE, iops=N, "
			     "bw_burst=SIZE, iops_burst=N)");
}
