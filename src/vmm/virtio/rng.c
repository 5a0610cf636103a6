/* virtio-rng: each request is a chain of device-writable buffers, filled from
 * getrandom(). A request is served up to RNG_MAX_FILL bytes, so one greedy chain
 * cannot keep the worker busy.
 *
 * With a rate limit (Firecracker's: the bytes handed over count against bandwidth, each
 * request against ops), a request the buckets can't pay for yet is held, popped but
 * unanswered, and the worker's timer brings it back when the tokens are there: the guest
 * waits rather than getting less than it asked for, and nothing behind it is taken off
 * the ring meanwhile. */
#include "vmm/virtio/rng.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include "vmm/config.h"
#include "vmm/virtio/rng_spec.h"
#include "vmm/virtio/virtio.h"

#define RNG_QUEUE_MAX 256
#define RNG_MAX_FILL (64u << 10)

struct rng {
	struct virtio_mmio *t;
	struct rate_limiter rl;
	struct virtq_chain chain;
	bool held; /* chain is popped and waits for tokens */
};

/* What a request gets: all of its buffers, up to RNG_MAX_FILL. */
static uint32_t request_bytes(const struct virtq_chain *c)
{
	return c->in_len < RNG_MAX_FILL ? (uint32_t)c->in_len : RNG_MAX_FILL;
}

static uint32_t fill(const struct virtq_chain *c)
{
	uint32_t done = 0;
	for (unsigned i = 0; i < c->n_in && done < RNG_MAX_FILL; i++) {
		uint8_t *p = c->in[i].host;
		uint32_t want = c->in[i].len;
		if (want > RNG_MAX_FILL - done)
			want = RNG_MAX_FILL - done;
		for (uint32_t got = 0; got < want;) {
			ssize_t n = getrandom(p + got, want - got, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return done;
			got += (uint32_t)n;
			done += (uint32_t)n;
		}
	}
	return done;
}

static void answer(struct rng *r, struct virtq *q)
{
	uint32_t n = fill(&r->chain);
	virtq_mark_written(q, &r->chain, n);
	virtq_push(q, r->chain.head, n);
	r->held = false;
}

/* A guest kick, or the timer a held request set: answers what the buckets allow. */
static void rng_queue_notify(void *opaque, unsigned qi)
{
	struct rng *r = opaque;
	struct virtq *q = virtio_mmio_queue(r->t, qi);
	bool pushed = false;
	for (;;) {
		if (!r->held) {
			vs_err_t err = NULL;
			int got = virtq_pop(q, &r->chain, &err);
			if (got < 0) {
				virtio_mmio_fail(r->t, err->msg);
				vs_err_free(&err);
				break;
			}
			if (got == 0)
				break;
			if (r->chain.n_out) {
				virtio_mmio_fail(r->t, "request has a device-readable buffer (the "
						       "entropy queue takes writable ones only)");
				break;
			}
			r->held = true;
		}
		uint32_t bytes = request_bytes(&r->chain);
		if (!rl_consume(&r->rl, bytes)) {
			/* a kick meanwhile lands here too and sets the same wake again */
			virtio_mmio_wake_after(r->t, rl_wait_ms(&r->rl, bytes));
			break;
		}
		answer(r, q);
		pushed = true;
	}
	if (pushed)
		virtio_mmio_notify_used(r->t, qi);
}

/* A pause (a snapshot, a migration) must leave nothing popped: the saved ring would skip
 * the held request and the guest would wait for it forever. It is answered in full now,
 * uncharged: one request of at most RNG_MAX_FILL a pause. */
static void rng_quiesce(void *opaque)
{
	struct rng *r = opaque;
	if (!r->held)
		return;
	struct virtq *q = virtio_mmio_queue(r->t, 0);
	answer(r, q);
	virtio_mmio_notify_used(r->t, 0);
}

static void rng_reset(void *opaque)
{
	struct rng *r = opaque;
	r->held = false; /* the driver dropped its ring with the request in it */
}

static const struct virtio_device_ops rng_ops = {
    .name = "rng",
    .device_id = VIRTIO_ID_RNG,
    .num_queues = 1,
    .queue_max = RNG_QUEUE_MAX,
    .queue_notify = rng_queue_notify,
    .quiesce = rng_quiesce,
    .reset = rng_reset,
    .destroy = free,
};

static void *rng_create(struct vm *vm, const void *config, vs_err_t *err)
{
	const struct rng_spec *spec = config;
	struct rng *r = calloc(1, sizeof(*r));
	if (!r) {
		vs_err(err, ENOMEM, "entropy device");
		return NULL;
	}
	rl_init(&r->rl);
	if (spec)
		r->rl = spec->rl;
	if (virtio_mmio_add(vm, &rng_ops, r, &r->t, err) < 0) {
		free(r);
		return NULL;
	}
	return r->t;
}

static int rng_from_cli(const char *spec, void *config, vs_err_t *err)
{
	return rng_spec_parse(spec, config, err);
}

/* Firecracker's EntropyDevice */
static int rng_from_json(json_t *obj, void *config, vs_err_t *err)
{
	return rng_spec_from_json(obj, config, err);
}

const struct device_kind virtio_rng_kind = {
    .name = "entropy",
    .cli_flag = "--rng",
    .api_path = "/entropy",
    .json_key = "entropy",
    .cli_spec_follows = rng_spec_looks_like,
    .virtio = true,
    .config_size = sizeof(struct rng_spec),
    .from_cli = rng_from_cli,
    .from_json = rng_from_json,
    .create = rng_create,
    .destroy = virtio_mmio_destroy,
    .save = virtio_mmio_save,
    .restore = virtio_mmio_restore,
};
