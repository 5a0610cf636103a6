/* The split-virtqueue walker over a fake guest memory: the well-formed chains it must
 * take, and one test per malformed case a hostile driver can post. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/virtio/queue.h"

#define RAM (256u << 10)
#define QSIZE 8
#define DESC 0x1000
#define AVAIL 0x2000
#define USED 0x3000
#define BUF 0x8000

#define F_NEXT 1
#define F_WRITE 2
#define F_INDIRECT 4

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

static struct guest_mem mem;
static struct virtq q;
static struct virtq_chain chain;
static vs_err_t err;

static void *gpa(uint64_t a)
{
	return mem.host + a;
}

/* Also a fresh start in the middle of a test (a second case after the first). */
static void setup(void)
{
	free(mem.host);
	mem.host = aligned_alloc(4096, RAM);
	cr_assert(mem.host);
	memset(mem.host, 0, RAM);
	mem.ram_size = mem.low_size = RAM;
	struct virtq_addrs a = {DESC, AVAIL, USED};
	cr_assert_eq(virtq_init(&q, &mem, QSIZE, &a, true, true, &err), 0);
	err = NULL;
}

static void teardown(void)
{
	vs_err_free(&err);
	free(mem.host);
}

static void set_desc_at(uint64_t table, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
			uint16_t next)
{
	struct desc d = {addr, len, flags, next};
	memcpy(gpa(table + 16u * i), &d, sizeof(d));
}

static void set_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	set_desc_at(DESC, i, addr, len, flags, next);
}

static uint16_t *avail_idx(void)
{
	return gpa(AVAIL + 2);
}

static void post(uint16_t head)
{
	uint16_t idx = *avail_idx();
	((uint16_t *)gpa(AVAIL + 4))[idx % QSIZE] = head;
	*avail_idx() = (uint16_t)(idx + 1);
}

static void expect_refused(const char *what)
{
	cr_assert_eq(virtq_pop(&q, &chain, &err), -1, "accepted: %s", what);
	cr_assert(err && strstr(err->msg, what), "error `%s` does not say `%s`",
		  err ? err->msg : "(none)", what);
}

TestSuite(virtq, .init = setup, .fini = teardown);

Test(virtq, empty_queue_gives_nothing_and_rearms_notifications)
{
	cr_assert_eq(virtq_pop(&q, &chain, &err), 0);
	uint16_t avail_event;
	memcpy(&avail_event, gpa(USED + 4 + 8 * QSIZE), 2);
	cr_assert_eq(avail_event, 0);
}

Test(virtq, takes_a_readable_then_writable_chain)
{
	set_desc(0, BUF, 16, F_NEXT, 3);
	set_desc(3, BUF + 0x100, 512, F_NEXT, 5);
	set_desc(5, BUF + 0x400, 1, F_WRITE, 0);
	post(0);
	cr_assert_eq(virtq_pop(&q, &chain, &err), 1);
	cr_assert_eq(chain.head, 0);
	cr_assert_eq(chain.n_out, 2);
	cr_assert_eq(chain.n_in, 1);
	cr_assert_eq(chain.out[0].host, gpa(BUF));
	cr_assert_eq(chain.out[1].len, 512);
	cr_assert_eq(chain.in[0].host, gpa(BUF + 0x400));
	cr_assert_eq(chain.out_len, 528);
	cr_assert_eq(chain.in_len, 1);
	cr_assert_eq(virtq_pop(&q, &chain, &err), 0, "one chain posted, one taken");
}

Test(virtq, takes_an_indirect_chain)
{
	uint64_t table = BUF + 0x1000;
	set_desc_at(table, 0, BUF, 16, F_NEXT, 1);
	set_desc_at(table, 1, BUF + 0x100, 4096, F_WRITE | F_NEXT, 2);
	set_desc_at(table, 2, BUF + 0x2000, 1, F_WRITE, 0);
	set_desc(2, table, 3 * 16, F_INDIRECT, 0);
	post(2);
	cr_assert_eq(virtq_pop(&q, &chain, &err), 1);
	cr_assert_eq(chain.head, 2);
	cr_assert_eq(chain.n_out, 1);
	cr_assert_eq(chain.n_in, 2);
	cr_assert_eq(chain.in_len, 4097);
}

Test(virtq, push_fills_the_used_ring_and_event_idx_decides_the_interrupt)
{
	set_desc(4, BUF, 64, F_WRITE, 0);
	post(4);
	cr_assert_eq(virtq_pop(&q, &chain, &err), 1);
	uint16_t used_event = 0; /* "interrupt me when used idx passes 0" */
	memcpy(gpa(AVAIL + 4 + 2 * QSIZE), &used_event, 2);
	virtq_push(&q, 4, 60);
	uint32_t elem[2];
	memcpy(elem, gpa(USED + 4), 8);
	cr_assert_eq(elem[0], 4);
	cr_assert_eq(elem[1], 60);
	cr_assert_eq(*(uint16_t *)gpa(USED + 2), 1);
	cr_assert(virtq_should_interrupt(&q));
	/* the driver has not moved used_event: no second interrupt */
	post(4);
	cr_assert_eq(virtq_pop(&q, &chain, &err), 1);
	virtq_push(&q, 4, 1);
	cr_assert_not(virtq_should_interrupt(&q));
}

Test(virtq, no_interrupt_flag_without_event_idx)
{
	struct virtq_addrs a = {DESC, AVAIL, USED};
	cr_assert_eq(virtq_init(&q, &mem, QSIZE, &a, false, false, &err), 0);
	set_desc(0, BUF, 8, F_WRITE, 0);
	post(0);
	cr_assert_eq(virtq_pop(&q, &chain, &err), 1);
	virtq_push(&q, 0, 8);
	cr_assert(virtq_should_interrupt(&q));
	*(uint16_t *)gpa(AVAIL) = 1; /* VIRTQ_AVAIL_F_NO_INTERRUPT */
	cr_assert_not(virtq_should_interrupt(&q));
}

Test(virtq, chain_copies_span_segments)
{
	set_desc(0, BUF, 3, F_NEXT, 1);
	set_desc(1, BUF + 0x100, 5, F_NEXT, 2);
	set_desc(2, BUF + 0x200, 4, F_WRITE | F_NEXT, 3);
	set_desc(3, BUF + 0x300, 4, F_WRITE, 0);
	memcpy(gpa(BUF), "abc", 3);
	memcpy(gpa(BUF + 0x100), "defgh", 5);
	post(0);
	cr_assert_eq(virtq_pop(&q, &chain, &err), 1);
	char got[9] = {0};
	cr_assert_eq(virtq_chain_read(&chain, 1, got, 100), 7);
	cr_assert_str_eq(got, "bcdefgh");
	cr_assert_eq(virtq_chain_write(&chain, 2, "WXYZ", 4), 4);
	cr_assert_eq(memcmp(gpa(BUF + 0x202), "WX", 2), 0);
	cr_assert_eq(memcmp(gpa(BUF + 0x300), "YZ", 2), 0);
	cr_assert_eq(virtq_chain_write(&chain, 7, "1234", 4), 1, "one byte of room left");
}

/* The malformed cases, one each. */

Test(virtq, head_index_out_of_range)
{
	post(QSIZE);
	expect_refused("head index 8 is past the queue size 8");
}

Test(virtq, next_index_out_of_range)
{
	set_desc(0, BUF, 16, F_NEXT, 0xffff);
	post(0);
	expect_refused("next index 65535 is past the descriptor table of 8");
}

Test(virtq, next_index_out_of_range_in_an_indirect_table)
{
	uint64_t table = BUF + 0x1000;
	set_desc_at(table, 0, BUF, 16, F_NEXT, 2);
	set_desc_at(table, 1, BUF, 16, 0, 0);
	set_desc(0, table, 32, F_INDIRECT, 0);
	post(0);
	expect_refused("next index 2 is past the indirect table of 2");
}

Test(virtq, address_outside_ram)
{
	set_desc(0, RAM - 8, 16, F_WRITE, 0); /* straddles the end of RAM */
	post(0);
	expect_refused("outside guest RAM");
	vs_err_free(&err);
	setup();
	set_desc(0, 0xd0000000ull, 4, 0, 0);
	post(0);
	expect_refused("buffer at 0xd0000000 (+4 bytes) is outside guest RAM");
}

Test(virtq, length_overflow)
{
	set_desc(0, 0xfffffffffffff000ull, 0x2000, F_WRITE, 0); /* addr + len wraps */
	post(0);
	expect_refused("outside guest RAM");
	vs_err_free(&err);
	setup();
	set_desc(0, BUF, 0xffffffffu, F_WRITE, 0); /* longer than RAM */
	post(0);
	expect_refused("outside guest RAM");
}

Test(virtq, loop)
{
	set_desc(0, BUF, 16, F_NEXT, 1);
	set_desc(1, BUF, 16, F_NEXT, 0);
	post(0);
	expect_refused("loops");
}

Test(virtq, self_loop_in_an_indirect_table)
{
	uint64_t table = BUF + 0x1000;
	set_desc_at(table, 0, BUF, 16, F_NEXT, 0);
	set_desc(0, table, 16, F_INDIRECT, 0);
	post(0);
	expect_refused("loops");
}

Test(virtq, over_long_chain)
{
	uint64_t table = BUF + 0x1000;
	for (uint16_t i = 0; i < VIRTQ_MAX_SEGS + 1; i++)
		set_desc_at(table, i, BUF, 1, F_WRITE | (i < VIRTQ_MAX_SEGS ? F_NEXT : 0),
			    (uint16_t)(i + 1));
	set_desc(0, table, 16 * (VIRTQ_MAX_SEGS + 1), F_INDIRECT, 0);
	post(0);
	expect_refused("longer than 256 descriptors");
}

Test(virtq, longest_allowed_chain_is_taken)
{
	uint64_t table = BUF + 0x1000;
	for (uint16_t i = 0; i < VIRTQ_MAX_SEGS; i++)
		set_desc_at(table, i, BUF, 1, F_WRITE | (i + 1 < VIRTQ_MAX_SEGS ? F_NEXT : 0),
			    (uint16_t)(i + 1));
	set_desc(0, table, 16 * VIRTQ_MAX_SEGS, F_INDIRECT, 0);
	post(0);
	cr_assert_eq(virtq_pop(&q, &chain, &err), 1);
	cr_assert_eq(chain.n_in, VIRTQ_MAX_SEGS);
}

/* The chain's first descriptor is device-writable where the device-readable part (the
 * request header) belongs: the readable one after it gives it away. */
Test(virtq, write_only_descriptor_where_a_read_only_one_belongs)
{
	set_desc(0, BUF, 16, F_WRITE | F_NEXT, 1);
	set_desc(1, BUF + 0x100, 16, 0, 0);
	post(0);
	expect_refused("device-readable descriptor after a device-writable one");
}

Test(virtq, indirect_without_the_feature)
{
	struct virtq_addrs a = {DESC, AVAIL, USED};
	cr_assert_eq(virtq_init(&q, &mem, QSIZE, &a, true, false, &err), 0);
	set_desc(0, BUF + 0x1000, 16, F_INDIRECT, 0);
	post(0);
	expect_refused("without VIRTIO_F_INDIRECT_DESC");
}

Test(virtq, nested_indirect_table)
{
	uint64_t table = BUF + 0x1000;
	set_desc_at(table, 0, table, 16, F_INDIRECT, 0);
	set_desc(0, table, 16, F_INDIRECT, 0);
	post(0);
	expect_refused("indirect table inside an indirect table");
}

Test(virtq, indirect_with_next)
{
	set_desc(0, BUF + 0x1000, 16, F_INDIRECT | F_NEXT, 1);
	post(0);
	expect_refused("indirect descriptor with NEXT set");
}

Test(virtq, indirect_table_length_not_a_multiple_of_16)
{
	set_desc(0, BUF + 0x1000, 24, F_INDIRECT, 0);
	post(0);
	expect_refused("indirect table of 24 bytes");
}

Test(virtq, indirect_table_outside_ram)
{
	set_desc(0, RAM - 16, 32, F_INDIRECT, 0);
	post(0);
	expect_refused("indirect table at");
}

Test(virtq, avail_index_runs_ahead_of_the_queue)
{
	*avail_idx() = QSIZE + 1;
	expect_refused("driver index moved by 9 on a queue of 8");
}

Test(virtq, set_up_is_checked)
{
	struct virtq_addrs a = {DESC, AVAIL, USED};
	cr_assert_eq(virtq_init(&q, &mem, 6, &a, true, true, &err), -1);
	cr_assert(strstr(err->msg, "not a power of two"));
	vs_err_free(&err);
	a.used = USED + 2;
	cr_assert_eq(virtq_init(&q, &mem, QSIZE, &a, true, true, &err), -1);
	cr_assert(strstr(err->msg, "not 4-byte aligned"), "%s", err->msg);
	vs_err_free(&err);
	a = (struct virtq_addrs){RAM - 64, AVAIL, USED};
	cr_assert_eq(virtq_init(&q, &mem, QSIZE, &a, true, true, &err), -1);
	cr_assert(strstr(err->msg, "outside guest RAM"), "%s", err->msg);
	cr_assert_not(q.ready);
	cr_assert_eq(virtq_pop(&q, &chain, &err), 0, "a queue that failed set-up is idle");
}
