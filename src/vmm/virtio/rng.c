/* virtio-rng: each request is a chain of device-writable buffers, filled from
 * getrandom(). A request is served up to RNG_MAX_FILL bytes, so one greedy chain
 * cannot keep the worker busy. */
#include "vmm/virtio/rng.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include "vmm/config.h"
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
		uint32_t n = fill(&r->chain);
		virtq_mark_written(q, &r->chain, n);
		virtq_push(q, r->chain.head, n);
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

/* Firecracker's EntropyDevice: its rate_limiter is not done yet, so only {} is taken. */
static int rng_from_json(json_t *obj, void *config, vs_err_t *err)
{
	(void)config;
	if (json_object_get(obj, "rate_limiter"))
		return vs_err(err, 0, "rate_limiter: not supported yet for entropy");
	static const char *const none[] = {NULL};
	return vm_json_only(obj, none, err);
}

const struct device_kind virtio_rng_kind = {
    .name = "entropy",
    .cli_flag = "--rng",
    .api_path = "/entropy",
    .json_key = "entropy",
    .virtio = true,
    .from_json = rng_from_json,
    .create = rng_create,
    .destroy = virtio_mmio_destroy,
    .save = virtio_mmio_save,
    .restore = virtio_mmio_restore,
};
