/* The snapshot state file: what is written reads back, and every damage a file can
 * carry (truncation, a flipped bit, another format version, a lying length) is refused
 * with an error that says which. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "base/error.h"
#include "vmm/snapshot/state_file.h"

static uint8_t *sample(size_t *len)
{
	struct snap_writer w = {0};
	vs_err_t err = NULL;
	static const char regs[13] = "thirteen-byte";
	cr_assert_eq(snap_writer_add(&w, "vcpu.regs", 0, regs, sizeof(regs), &err), 0);
	cr_assert_eq(snap_writer_add(&w, "vcpu.regs", 1, "xy", 2, &err), 0);
	cr_assert_eq(snap_writer_add(&w, "empty", 0, NULL, 0, &err), 0);
	uint8_t *bytes;
	cr_assert_eq(snap_writer_finish(&w, &bytes, len, &err), 0);
	snap_writer_release(&w);
	return bytes;
}

static char *parse_error(const uint8_t *b, size_t len)
{
	struct snap_file f;
	vs_err_t err = NULL;
	cr_assert_eq(snap_parse(b, len, &f, &err), -1);
	cr_assert_not_null(err);
	char *msg = strdup(err->msg);
	vs_err_free(&err);
	return msg;
}

/* Re-seals the CRC so a test reaches the check behind it. */
static void reseal(uint8_t *b, size_t len)
{
	uint32_t c = (uint32_t)crc32(0, b + SNAP_HEADER_SIZE, (uInt)(len - SNAP_HEADER_SIZE));
	for (int i = 0; i < 4; i++)
		b[24 + i] = (uint8_t)(c >> (8 * i));
}

Test(snapshot_file, round_trip)
{
	size_t len;
	uint8_t *b = sample(&len);
	cr_assert_eq(len % 8, 0);
	struct snap_file f;
	vs_err_t err = NULL;
	cr_assert_eq(snap_parse(b, len, &f, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(f.nsections, 3);
	const struct snap_section *s = snap_find(&f, "vcpu.regs", 0);
	cr_assert_not_null(s);
	cr_assert_eq(s->len, 13);
	cr_assert_eq(memcmp(s->data, "thirteen-byte", 13), 0);
	cr_assert_eq(memcmp(snap_get_exact(&f, "vcpu.regs", 1, 2, &err), "xy", 2), 0);
	cr_assert_eq(snap_find(&f, "empty", 0)->len, 0);
	cr_assert_null(snap_find(&f, "vcpu.regs", 2));
	snap_file_release(&f);
	free(b);
}

Test(snapshot_file, file_round_trip_leaves_no_temporary)
{
	char dir[] = "/tmp/vessel-snap-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char path[64], tmp[72];
	snprintf(path, sizeof(path), "%s/state", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	struct snap_writer w = {0};
	vs_err_t err = NULL;
	cr_assert_eq(snap_writer_add(&w, "vm.clock", 0, "12345678", 8, &err), 0);
	cr_assert_eq(snap_writer_write_file(&w, path, &err), 0);
	cr_assert_eq(access(tmp, F_OK), -1);
	struct snap_file f;
	cr_assert_eq(snap_read_file(path, &f, &err), 0);
	cr_assert_eq(memcmp(snap_get_exact(&f, "vm.clock", 0, 8, &err), "12345678", 8), 0);
	snap_file_release(&f);
	unlink(path);
	rmdir(dir);
}

Test(snapshot_file, wrong_size_section_is_named)
{
	size_t len;
	uint8_t *b = sample(&len);
	struct snap_file f;
	vs_err_t err = NULL;
	cr_assert_eq(snap_parse(b, len, &f, &err), 0);
	cr_assert_null(snap_get_exact(&f, "vcpu.regs", 0, 16, &err));
	cr_assert_str_eq(err->msg,
			 "state file section vcpu.regs[0] is 13 bytes, this vessel expects 16");
	vs_err_free(&err);
	cr_assert_null(snap_get_exact(&f, "vcpu.lapic", 0, 16, &err));
	cr_assert_str_eq(err->msg, "state file has no section vcpu.lapic[0]");
	vs_err_free(&err);
	snap_file_release(&f);
	free(b);
}

Test(snapshot_file, every_truncation_is_refused)
{
	size_t len;
	uint8_t *b = sample(&len);
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1);
		memcpy(copy, b, cut);
		free(parse_error(copy, cut));
		free(copy);
	}
	char *msg = parse_error(b, len - 8);
	cr_assert(strstr(msg, "truncated"), "%s", msg);
	free(msg);
	free(b);
}

Test(snapshot_file, every_bit_flip_is_refused)
{
	size_t len;
	uint8_t *b = sample(&len);
	for (size_t i = 0; i < len; i++)
		for (int bit = 0; bit < 8; bit++) {
			b[i] ^= (uint8_t)(1u << bit);
			free(parse_error(b, len));
			b[i] ^= (uint8_t)(1u << bit);
		}
	b[len - 9] ^= 1; /* in a section's data: only the CRC can tell */
	char *msg = parse_error(b, len);
	cr_assert(strstr(msg, "state file is corrupt: CRC32"), "%s", msg);
	free(msg);
	free(b);
}

Test(snapshot_file, other_versions_name_both)
{
	size_t len;
	uint8_t *b = sample(&len);
	b[8] = 2;
	char *msg = parse_error(b, len);
	cr_assert_str_eq(msg, "state file has format version 2, this vessel reads version 1 "
			      "(take the snapshot again with this vessel)");
	free(msg);
	b[8] = 0;
	msg = parse_error(b, len);
	cr_assert(strstr(msg, "format version 0, this vessel reads version 1"), "%s", msg);
	free(msg);
	free(b);
}

Test(snapshot_file, bad_magic)
{
	size_t len;
	uint8_t *b = sample(&len);
	b[0] = 'X';
	char *msg = parse_error(b, len);
	cr_assert_str_eq(msg, "not a vessel snapshot state file (bad magic)");
	free(msg);
	free(b);
}

/* A section length that lies, with the CRC re-sealed as a forger would. */
Test(snapshot_file, lying_lengths_are_refused_even_with_a_good_crc)
{
	size_t len;
	uint8_t *b = sample(&len);
	uint8_t *sec0 = b + SNAP_HEADER_SIZE;
	sec0[32] = 0xff, sec0[33] = 0xff, sec0[38] = 0x7f;
	reseal(b, len);
	char *msg = parse_error(b, len);
	cr_assert(strstr(msg, "section vcpu.regs[0] says"), "%s", msg);
	free(msg);
	free(b);

	b = sample(&len);
	b[12] = 0xff, b[13] = 0xff; /* section count */
	msg = parse_error(b, len);
	cr_assert(strstr(msg, "sections cannot fit"), "%s", msg);
	free(msg);
	b[12] = 2, b[13] = 0;
	msg = parse_error(b, len);
	cr_assert(strstr(msg, "after the last of its 2 sections"), "%s", msg);
	free(msg);
	free(b);
}

/* A count that fits by size but not by layout: one 80-byte section takes the room of 3. */
Test(snapshot_file, section_headers_past_the_end_are_refused)
{
	struct snap_writer w = {0};
	vs_err_t err = NULL;
	uint8_t data[80] = {0};
	cr_assert_eq(snap_writer_add(&w, "big", 0, data, sizeof(data), &err), 0);
	uint8_t *b;
	size_t len;
	cr_assert_eq(snap_writer_finish(&w, &b, &len, &err), 0);
	b[12] = 3;
	char *msg = parse_error(b, len);
	cr_assert(strstr(msg, "section 1 header runs past the end"), "%s", msg);
	free(msg);
	free(b);
}

Test(snapshot_file, duplicate_and_unterminated_names_are_refused)
{
	size_t len;
	uint8_t *b = sample(&len);
	uint8_t *sec1 = b + SNAP_HEADER_SIZE + SNAP_SECTION_HEADER_SIZE + 16;
	sec1[24] = 0; /* vcpu.regs[1] becomes a second vcpu.regs[0] */
	reseal(b, len);
	char *msg = parse_error(b, len);
	cr_assert(strstr(msg, "section vcpu.regs[0] appears twice"), "%s", msg);
	free(msg);
	sec1[24] = 1;
	memset(sec1, 'a', SNAP_NAME_MAX);
	reseal(b, len);
	msg = parse_error(b, len);
	cr_assert(strstr(msg, "section 1 has no valid name"), "%s", msg);
	free(msg);
	free(b);
}

Test(snapshot_file, writer_refuses_bad_names)
{
	struct snap_writer w = {0};
	vs_err_t err = NULL;
	cr_assert_eq(snap_writer_add(&w, "", 0, "x", 1, &err), -1);
	vs_err_free(&err);
	cr_assert_eq(snap_writer_add(&w, "a-name-of-twenty-four-ch", 0, "x", 1, &err), -1);
	vs_err_free(&err);
	snap_writer_release(&w);
}
