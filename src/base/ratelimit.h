/* Token buckets with Firecracker's semantics, for disk, network and entropy rate limits.
 *
 * A bucket holds up to `size` tokens and refills from empty to full in `refill_time_ms`.
 * It starts full. `one_time_burst` tokens are spent first and never come back. A request
 * bigger than the whole bucket is let through once (it empties the bucket and leaves a
 * debt that the refill repays before anything else passes), so a large I/O is slowed,
 * never refused. A bucket of size 0 is unlimited.
 *
 * Not thread-safe: each device owns its limiter and uses it from its worker thread. */
#ifndef VESSEL_BASE_RATELIMIT_H
#define VESSEL_BASE_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

struct token_bucket {
	uint64_t size, one_time_burst, refill_time_ms;
	uint64_t budget;  /* tokens available now, <= size */
	uint64_t debt;	  /* tokens an over-size request took beyond the budget */
	uint64_t last_ns; /* when the budget was last brought up to date */
	bool started;	  /* last_ns is set (at the first use) */
};

/* size 0: unlimited (every reduce succeeds). */
void tb_init(struct token_bucket *b, uint64_t size, uint64_t one_time_burst,
	     uint64_t refill_time_ms);
static inline bool tb_unlimited(const struct token_bucket *b)
{
	return b->size == 0;
}
/* Takes `tokens`; false: not enough yet, nothing was taken, wait tb_wait_ms(). */
bool tb_reduce(struct token_bucket *b, uint64_t tokens);
/* Milliseconds until tb_reduce(b, tokens) can succeed (0: now). */
unsigned tb_wait_ms(struct token_bucket *b, uint64_t tokens);
/* Gives back tokens a failed multi-bucket request took (never beyond size). */
void tb_refund(struct token_bucket *b, uint64_t tokens);

/* The same with an explicit CLOCK_MONOTONIC time, for tests. */
bool tb_reduce_at(struct token_bucket *b, uint64_t tokens, uint64_t now_ns);
unsigned tb_wait_ms_at(struct token_bucket *b, uint64_t tokens, uint64_t now_ns);

/* Bytes per second and operations per second; either may be unlimited. */
struct rate_limiter {
	struct token_bucket bw, ops;
};

/* Both unlimited. */
void rl_init(struct rate_limiter *rl);
static inline bool rl_unlimited(const struct rate_limiter *rl)
{
	return tb_unlimited(&rl->bw) && tb_unlimited(&rl->ops);
}
/* One operation of `bytes` bytes: true if both buckets allowed it (both were charged),
 * false if it must wait (neither was charged). */
bool rl_consume(struct rate_limiter *rl, uint64_t bytes);
bool rl_consume_at(struct rate_limiter *rl, uint64_t bytes, uint64_t now_ns);
/* Milliseconds until rl_consume(rl, bytes) can succeed (0: now). */
unsigned rl_wait_ms(struct rate_limiter *rl, uint64_t bytes);
unsigned rl_wait_ms_at(struct rate_limiter *rl, uint64_t bytes, uint64_t now_ns);

/* One `key=value` of a device spec: bw=RATE (bytes/s, K/M/G suffixes), iops=N (ops/s),
 * bw_burst=BYTES, iops_burst=N (one-time bursts). Returns 1 if key is one of these and
 * was applied, 0 if key is not a rate-limit key, -1 on a bad value ("bw: not a rate").
 * Buckets refill over 1000 ms, so bw=50M is a 50 MiB bucket refilled every second. */
int rl_parse_option(struct rate_limiter *rl, const char *key, const char *value, vs_err_t *err);
/* After all options: a burst given without its rate is an error. */
int rl_check(const struct rate_limiter *rl, vs_err_t *err);
/* The same keys spelled ops= and ops_burst= (a network frame, an entropy request), for a
 * spec's key and value not NUL-terminated; iops= is not one of them here. Messages name
 * ops. */
int rl_parse_ops_option(struct rate_limiter *rl, const char *key, size_t klen, const char *val,
			size_t vlen, vs_err_t *err);
int rl_check_ops(const struct rate_limiter *rl, vs_err_t *err);

#endif
