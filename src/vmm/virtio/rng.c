/* virtio-rng: each request is a chain of device-writable buffers, filled from
 * getrandom(). A request is served up to RNG_MAX_FILL bytes, so one greedy chain
 * cannot keep the worker busy. */
#include "vmm/virtio/rng.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include "vmm/virtio/virtio.h"

#define RNG_QUEUE_MAX 256
#define RNG_MAX_FILL (64u << 10)

struct rng {
	struct virtio_mmio *t;
	struct virtq_chain chain;
};

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

static void rng_queue_notify(void *opaque, unsigned qi)
{
	struct rng *r = opaque;
	struct virtq *q = virtio_mmio_queue(r->t, qi);
	bool pushed = false;
	for (;;) {
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
		virtq_push(q, r->chain.head, fill(&r->chain));
		pushed = true;
	}
	if (pushed)
		virtio_mmio_notify_used(r->t, qi);
}

static const struct virtio_device_ops rng_ops = {
    .name = "rng",
    .device_id = VIRTIO_ID_RNG,
    .num_queues = 1,
    .queue_max = RNG_QUEUE_MAX,
    .queue_notify = rng_queue_notify,
    .destroy = free,
};

static void *rng_create(struct vm *vm, const void *config, vs_err_t *err)
{
	(void)config;
	struct rng *r = calloc(1, sizeof(*r));
	if (!r) {
		vs_err(err, ENOMEM, "entropy device");
		return NULL;
	}
	if (virtio_mmio_add(vm, &rng_ops, r, &r->t, err) < 0) {
		free(r);
		return NULL;
	}
	return r->t;
}

const struct device_kind virtio_rng_kind = {
    .name = "entropy",
    .cli_flag = "--rng",
    .api_path = "/entropy",
    .json_key = "entropy",
    .virtio = true,
    .create = rng_create,
    .destroy = virtio_mmio_destroy,
};
