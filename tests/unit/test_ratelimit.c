#include <criterion/criterion.h>

#include "base/ratelimit.h"

#define MS 1000000ull
#define T0 (1000 * MS) /* any start time: buckets count from their first use */

Test(token_bucket, starts_full_and_refills_at_its_rate)
{
	struct token_bucket b;
	tb_init(&b, 1000, 0, 1000);
	cr_assert(tb_reduce_at(&b, 1000, T0));
	cr_assert_not(tb_reduce_at(&b, 1, T0));
	/* 1000 tokens a second: 100 ms earn 100 */
	cr_assert_eq(tb_wait_ms_at(&b, 100, T0), 100);
	cr_assert_not(tb_reduce_at(&b, 100, T0 + 99 * MS));
	cr_assert(tb_reduce_at(&b, 100, T0 + 100 * MS));
	cr_assert_not(tb_reduce_at(&b, 1, T0 + 100 * MS));
}

Test(token_bucket, a_refusal_takes_nothing)
{
	struct token_bucket b;
	tb_init(&b, 1000, 0, 1000);
	cr_assert(tb_reduce_at(&b, 600, T0));
	cr_assert_not(tb_reduce_at(&b, 500, T0));
	cr_assert(tb_reduce_at(&b, 400, T0));
}

Test(token_bucket, never_holds_more_than_its_size)
{
	struct token_bucket b;
	tb_init(&b, 1000, 0, 1000);
	cr_assert(tb_reduce_at(&b, 1, T0));
	/* an hour idle still gives one bucketful */
	cr_assert(tb_reduce_at(&b, 1000, T0 + 3600000 * MS));
	cr_assert_not(tb_reduce_at(&b, 1, T0 + 3600000 * MS));
}

Test(token_bucket, slow_polls_lose_no_fractions)
{
	struct token_bucket b;
	tb_init(&b, 3, 0, 1000); /* one token every 333.3 ms */
	cr_assert(tb_reduce_at(&b, 3, T0));
	unsigned got = 0;
	for (uint64_t t = T0; t <= T0 + 10003 * MS; t += 7 * MS)
		got += tb_reduce_at(&b, 1, t);
	cr_assert_eq(got, 30);
}

Test(token_bucket, one_time_burst_is_spent_first_and_never_returns)
{
	struct token_bucket b;
	tb_init(&b, 100, 50, 1000);
	cr_assert(tb_reduce_at(&b, 150, T0)); /* 50 burst + 100 budget */
	cr_assert_not(tb_reduce_at(&b, 1, T0));
	cr_assert_eq(b.one_time_burst, 0);
	cr_assert(tb_reduce_at(&b, 100, T0 + 5000 * MS));
	cr_assert_not(tb_reduce_at(&b, 1, T0 + 5000 * MS));
}

Test(token_bucket, over_size_request_passes_then_the_debt_is_repaid)
{
	struct token_bucket b;
	tb_init(&b, 1000, 0, 1000);
	cr_assert(tb_reduce_at(&b, 3000, T0)); /* 2000 beyond the full bucket */
	cr_assert_eq(b.debt, 2000);
	cr_assert_eq(tb_wait_ms_at(&b, 1, T0), 2001);
	cr_assert_not(tb_reduce_at(&b, 1, T0 + 1999 * MS));
	cr_assert_not(tb_reduce_at(&b, 1, T0 + 2000 * MS)); /* repaid, budget still 0 */
	cr_assert(tb_reduce_at(&b, 1, T0 + 2001 * MS));
}

Test(token_bucket, wait_is_enough)
{
	struct token_bucket b;
	tb_init(&b, 4096 * 10, 0, 1000);
	uint64_t t = T0;
	unsigned done = 0;
	while (done < 100) {
		if (tb_reduce_at(&b, 4096, t)) {
			done++;
			continue;
		}
		unsigned ms = tb_wait_ms_at(&b, 4096, t);
		cr_assert_gt(ms, 0);
		t += ms * MS;
		cr_assert(tb_reduce_at(&b, 4096, t), "woke after %u ms and still short", ms);
		done++;
	}
	/* 100 x 4 KiB at 10 x 4 KiB/s with a full bucket at the start: 9 s */
	cr_assert_geq(t - T0, 8900 * MS);
	cr_assert_leq(t - T0, 9100 * MS);
}

Test(token_bucket, zero_size_is_unlimited)
{
	struct token_bucket b;
	tb_init(&b, 0, 0, 0);
	for (int i = 0; i < 1000; i++)
		cr_assert(tb_reduce_at(&b, UINT64_MAX, T0));
	cr_assert_eq(tb_wait_ms_at(&b, UINT64_MAX, T0), 0);
}

Test(token_bucket, refund_is_capped)
{
	struct token_bucket b;
	tb_init(&b, 100, 0, 1000);
	cr_assert(tb_reduce_at(&b, 60, T0));
	tb_refund(&b, 1000);
	cr_assert_eq(b.budget, 100);
}

Test(token_bucket, huge_values_do_not_overflow)
{
	struct token_bucket b;
	tb_init(&b, UINT64_MAX / 2, 0, 1000);
	cr_assert(tb_reduce_at(&b, UINT64_MAX / 2, T0));
	cr_assert(tb_reduce_at(&b, UINT64_MAX / 4, T0 + 600 * MS));
	cr_assert_leq(tb_wait_ms_at(&b, UINT64_MAX / 2, T0 + 600 * MS), 1000);
}

Test(rate_limiter, both_buckets_or_neither)
{
	struct rate_limiter rl;
	rl_init(&rl);
	vs_err_t err = NULL;
	cr_assert_eq(rl_parse_option(&rl, "bw", "1K", &err), 1);
	cr_assert_eq(rl_parse_option(&rl, "iops", "2", &err), 1);
	cr_assert_eq(rl_check(&rl, &err), 0);
	cr_assert(rl_consume_at(&rl, 512, T0));
	cr_assert(rl_consume_at(&rl, 256, T0));
	/* ops exhausted: the bytes must not be charged */
	cr_assert_not(rl_consume_at(&rl, 256, T0));
	cr_assert_eq(rl.bw.budget, 256);
	cr_assert_eq(rl_wait_ms_at(&rl, 256, T0), 500);
	cr_assert(rl_consume_at(&rl, 256, T0 + 500 * MS));
}

Test(rate_limiter, bytes_short_charges_no_op)
{
	struct rate_limiter rl;
	rl_init(&rl);
	vs_err_t err = NULL;
	cr_assert_eq(rl_parse_option(&rl, "bw", "1K", &err), 1);
	cr_assert_eq(rl_parse_option(&rl, "iops", "10", &err), 1);
	cr_assert(rl_consume_at(&rl, 1000, T0));
	cr_assert_not(rl_consume_at(&rl, 100, T0));
	cr_assert_eq(rl.ops.budget, 9);
	cr_assert_eq(rl.bw.budget, 24);
}

Test(rate_limiter, unlimited_by_default)
{
	struct rate_limiter rl;
	rl_init(&rl);
	cr_assert(rl_unlimited(&rl));
	cr_assert(rl_consume_at(&rl, 1ull << 40, T0));
	cr_assert_eq(rl_wait_ms_at(&rl, 1ull << 40, T0), 0);
}

Test(rate_limiter, parses_spec_fragments)
{
	struct rate_limiter rl;
	rl_init(&rl);
	vs_err_t err = NULL;
	cr_assert_eq(rl_parse_option(&rl, "bw_burst", "4M", &err), 1);
	cr_assert_eq(rl_parse_option(&rl, "bw", "50M", &err), 1);
	cr_assert_eq(rl_parse_option(&rl, "iops", "1000", &err), 1);
	cr_assert_eq(rl_parse_option(&rl, "iops_burst", "200", &err), 1);
	cr_assert_eq(rl_parse_option(&rl, "ro", NULL, &err), 0);
	cr_assert_eq(rl_check(&rl, &err), 0);
	cr_assert_eq(rl.bw.size, 50ull << 20);
	cr_assert_eq(rl.bw.one_time_burst, 4ull << 20);
	cr_assert_eq(rl.bw.refill_time_ms, 1000);
	cr_assert_eq(rl.ops.size, 1000);
	cr_assert_eq(rl.ops.one_time_burst, 200);
	cr_assert_null(err);
}

Test(rate_limiter, bad_values_name_the_key)
{
	struct rate_limiter rl;
	rl_init(&rl);
	vs_err_t err = NULL;
	cr_assert_eq(rl_parse_option(&rl, "bw", "fast", &err), -1);
	cr_assert_str_eq(err->msg, "bw: not a rate");
	vs_err_free(&err);
	cr_assert_eq(rl_parse_option(&rl, "iops", "", &err), -1);
	cr_assert_str_eq(err->msg, "iops: not a rate");
	vs_err_free(&err);
	cr_assert_eq(rl_parse_option(&rl, "iops", NULL, &err), -1);
	vs_err_free(&err);
	cr_assert_eq(rl_parse_option(&rl, "bw", "0", &err), -1);
	cr_assert_str_eq(err->msg, "bw: must be above 0 (leave it out for no limit)");
	vs_err_free(&err);
	cr_assert_eq(rl_parse_option(&rl, "bw_burst", "-5", &err), -1);
	cr_assert_str_eq(err->msg, "bw_burst: not a size");
	vs_err_free(&err);
	cr_assert_eq(rl_parse_option(&rl, "iops_burst", "10", &err), 1);
	cr_assert_eq(rl_check(&rl, &err), -1);
	cr_assert_str_eq(err->msg, "iops_burst: needs iops=");
	vs_err_free(&err);
}
