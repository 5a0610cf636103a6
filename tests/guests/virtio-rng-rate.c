/* virtio-rng under a rate limit: REQUESTS reads of CHUNK bytes, one at a time, as a driver
 * feeding /dev/hwrng would. Each must come back whole (a limited device makes the guest
 * wait, it never answers short); the host times the reads between two lines. The wait per request
 * is generous: at the limits the tests set, one request takes well under a second. */
#include "guest.h"
#include "virtio.h"

#define REQUESTS 32
#define CHUNK 512
#define WAIT_TICKS (20 * STOP_WAIT_TICKS)

void guest_main(void)
{
	struct vdev d;
	if (!virtio_find_id(VIRTIO_ID_RNG, 0, &d))
		guest_fail("no virtio-rng device on the command line");
	if (virtio_init(&d, 0) < 0)
		guest_fail("virtio-rng: feature negotiation");
	struct vq q;
	if (virtio_queue_setup(&d, &q, 0, 64) < 0)
		guest_fail("virtio-rng: queue set-up");
	virtio_driver_ok(&d);

	uint8_t *buf = virtio_alloc(CHUNK, 64);
	uint32_t total = 0, shorts = 0;
	/* the host times the reads from this line to the next, apart from the boot */
	gprintf("RNG START\n");
	for (int i = 0; i < REQUESTS; i++) {
		struct vbuf in = {vaddr(buf), CHUNK};
		int head = vq_add(&q, 0, 0, &in, 1);
		if (head < 0)
			guest_fail("virtio-rng: add");
		vq_publish(&q, (uint16_t)head);
		vq_kick(&q);
		uint32_t id, len;
		if (vq_wait_used(&q, &id, &len, WAIT_TICKS) < 0 || id != (uint32_t)head)
			guest_fail("virtio-rng: a request was not answered");
		total += len;
		shorts += len != CHUNK;
	}
	gprintf("RNG RATE: %d requests, %u bytes, %u short\n", REQUESTS, total, shorts);
	gprintf("RNG STATUS: 0x%02x\n", virtio_status(&d));
	virtio_reset(&d);
	gprintf("RNG DONE\n");
}
