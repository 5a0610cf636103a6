/* Token buckets (Firecracker's rate_limiter semantics) and their spec parser. */
#include "base/ratelimit.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/util.h"

#define NS_PER_MS 1000000ull
#define REFILL_MS 1000

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void tb_init(struct token_bucket *b, uint64_t size, uint64_t one_time_burst,
	     uint64_t refill_time_ms)
{
	*b = (struct token_bucket){
	    .size = size,
	    .one_time_burst = one_time_burst,
	    .refill_time_ms = refill_time_ms ? refill_time_ms : REFILL_MS,
	    .budget = size,
	};
}

/* Adds the tokens earned since last_ns: they repay a debt first, then fill the budget.
 * last_ns only advances by the time the granted tokens stand for, so slow callers lose
 * no fractions of a token to rounding. */
static void replenish(struct token_bucket *b, uint64_t now)
{
	if (!b->started) {
		b->started = true;
		b->last_ns = now;
		return;
	}
	if (now <= b->last_ns)
		return;
	uint64_t refill_ns = b->refill_time_ms * NS_PER_MS;
	uint64_t room = b->debt + (b->size - b->budget);
	if (room == 0) {
		b->last_ns = now;
		return;
	}
	unsigned __int128 earned = (unsigned __int128)(now - b->last_ns) * b->size / refill_ns;
	if (earned >= room) {
		b->debt = 0;
		b->budget = b->size;
		b->last_ns = now;
		return;
	}
	uint64_t tokens = (uint64_t)earned;
	b->last_ns += (uint64_t)((unsigned __int128)tokens * refill_ns / b->size);
	uint64_t repay = tokens < b->debt ? tokens : b->debt;
	b->debt -= repay;
	b->budget += tokens - repay;
}

bool tb_reduce_at(struct token_bucket *b, uint64_t tokens, uint64_t now)
{
	if (tb_unlimited(b))
		return true;
	replenish(b, now);
	if (b->debt)
		return false;
	if (b->one_time_burst) {
		if (b->one_time_burst >= tokens) {
			b->one_time_burst -= tokens;
			return true;
		}
		tokens -= b->one_time_burst;
		b->one_time_burst = 0;
	}
	if (tokens > b->size) {
		/* Bigger than the bucket could ever hold: let it through, and make the
		 * next requests wait until the refill has paid for the rest. */
		b->debt = tokens - b->budget;
		b->budget = 0;
		return true;
	}
	if (tokens > b->budget)
		return false;
	b->budget -= tokens;
	return true;
}

unsigned tb_wait_ms_at(struct token_bucket *b, uint64_t tokens, uint64_t now)
{
	if (tb_unlimited(b))
		return 0;
	replenish(b, now);
	uint64_t after_burst = tokens > b->one_time_burst ? tokens - b->one_time_burst : 0;
	uint64_t need;
	if (b->debt) /* the budget stays 0 until the debt is repaid */
		need = b->debt + (after_burst <= b->size ? after_burst : 0);
	else if (after_burst <= b->budget || after_burst > b->size)
		return 0;
	else
		need = after_burst - b->budget;
	/* Rounded up, so waking after this long finds the tokens there. */
	unsigned __int128 ms =
	    ((unsigned __int128)need * b->refill_time_ms + b->size - 1) / b->size;
	if (ms == 0)
		ms = 1;
	return ms > 3600000 ? 3600000 : (unsigned)ms;
}

bool tb_reduce(struct token_bucket *b, uint64_t tokens)
{
	return tb_reduce_at(b, tokens, now_ns());
}

unsigned tb_wait_ms(struct token_bucket *b, uint64_t tokens)
{
	return tb_wait_ms_at(b, tokens, now_ns());
}

void tb_refund(struct token_bucket *b, uint64_t tokens)
{
	if (tb_unlimited(b))
		return;
	b->budget = tokens > b->size - b->budget ? b->size : b->budget + tokens;
}

void rl_init(struct rate_limiter *rl)
{
	tb_init(&rl->bw, 0, 0, 0);
	tb_init(&rl->ops, 0, 0, 0);
}

bool rl_consume_at(struct rate_limiter *rl, uint64_t bytes, uint64_t now)
{
	/* Check first so a refusal charges neither bucket (a refund could not restore a
	 * spent one-time burst or a debt). */
	if (tb_wait_ms_at(&rl->ops, 1, now) || tb_wait_ms_at(&rl->bw, bytes, now))
		return false;
	bool ops = tb_reduce_at(&rl->ops, 1, now);
	bool bw = tb_reduce_at(&rl->bw, bytes, now);
	return ops && bw;
}

unsigned rl_wait_ms_at(struct rate_limiter *rl, uint64_t bytes, uint64_t now)
{
	unsigned a = tb_wait_ms_at(&rl->ops, 1, now);
	unsigned b = tb_wait_ms_at(&rl->bw, bytes, now);
	return a > b ? a : b;
}

bool rl_consume(struct rate_limiter *rl, uint64_t bytes)
{
	return rl_consume_at(rl, bytes, now_ns());
}

unsigned rl_wait_ms(struct rate_limiter *rl, uint64_t bytes)
{
	return rl_wait_ms_at(rl, bytes, now_ns());
}

int rl_parse_option(struct rate_limiter *rl, const char *key, const char *value, vs_err_t *err)
{
	struct token_bucket *b;
	bool burst;
	if (!strcmp(key, "bw"))
		b = &rl->bw, burst = false;
	else if (!strcmp(key, "iops"))
		b = &rl->ops, burst = false;
	else if (!strcmp(key, "bw_burst"))
		b = &rl->bw, burst = true;
	else if (!strcmp(key, "iops_burst"))
		b = &rl->ops, burst = true;
	else
		return 0;

	uint64_t v;
	if (!value || vs_parse_size(value, &v) < 0)
		return vs_err(err, 0, "%s: not a %s", key, burst ? "size" : "rate");
	if (burst) {
		b->one_time_burst = v;
		return 1;
	}
	if (v == 0)
		return vs_err(err, 0, "%s: must be above 0 (leave it out for no limit)", key);
	uint64_t keep_burst = b->one_time_burst;
	tb_init(b, v, keep_burst, REFILL_MS);
	return 1;
}

int rl_check(const struct rate_limiter *rl, vs_err_t *err)
{
	if (tb_unlimited(&rl->bw) && rl->bw.one_time_burst)
		return vs_err(err, 0, "bw_burst: needs bw=");
	if (tb_unlimited(&rl->ops) && rl->ops.one_time_burst)
		return vs_err(err, 0, "iops_burst: needs iops=");
	return 0;
}

/* The disk's words are iops=; a network frame or an entropy request is an operation, so
 * those specs say ops= and the messages are respelled to name the option the user typed. */
static int respell_ops(vs_err_t *err)
{
	if (!err || !*err || !(*err)->msg)
		return -1;
	char buf[256];
	size_t n = 0;
	for (const char *s = (*err)->msg; *s && n + 1 < sizeof(buf);) {
		if (strncmp(s, "iops", 4) == 0)
			s++;
		buf[n++] = *s++;
	}
	buf[n] = '\0';
	vs_err_free(err);
	return vs_err(err, 0, "%s", buf);
}

int rl_parse_ops_option(struct rate_limiter *rl, const char *key, size_t klen, const char *val,
			size_t vlen, vs_err_t *err)
{
	char k[16], v[64];
	if (klen >= sizeof(k) || key[0] == 'i')
		return 0;
	snprintf(k, sizeof(k), "%s%.*s", klen >= 3 && memcmp(key, "ops", 3) == 0 ? "i" : "",
		 (int)klen, key);
	if (strcmp(k, "iops") != 0 && strcmp(k, "iops_burst") != 0 && strcmp(k, "bw") != 0 &&
	    strcmp(k, "bw_burst") != 0)
		return 0;
	if (vlen >= sizeof(v))
		return vs_err(err, 0, "%.*s: value too long", (int)klen, key);
	snprintf(v, sizeof(v), "%.*s", (int)vlen, val);
	int r = rl_parse_option(rl, k, v, err);
	return r < 0 && k[0] == 'i' ? respell_ops(err) : r;
}

int rl_check_ops(const struct rate_limiter *rl, vs_err_t *err)
{
	return rl_check(rl, err) < 0 ? respell_ops(err) : 0;
}
