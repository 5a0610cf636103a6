/* virtio-rng through the guest virtio library: lists the virtio devices the command line
 * names, then reads entropy with a direct chain, an indirect one (EVENT_IDX and
 * INDIRECT_DESC negotiated) and a batch of chains behind one kick. Prints the bytes so
 * the host can check that two runs differ. */
#include "guest.h"
#include "virtio.h"

#define BATCH 32
#define ROUND_TRIPS 100

static bool all_zero(const uint8_t *p, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

void guest_main(void)
{
	struct vdev all[16];
	int n = virtio_find(all, 16);
	gprintf("VIRTIO DEVICES: %d\n", n);
	for (int i = 0; i < n; i++)
		gprintf("VIRTIO DEVICE: id=%u base=0x%08x irq=%u\n", all[i].device_id, all[i].base,
			all[i].irq);
	struct vdev d;
	if (!virtio_find_id(VIRTIO_ID_RNG, 0, &d))
		guest_fail("no virtio-rng device on the command line");
	if (virtio_init(&d, VIRTIO_BIT(VIRTIO_F_EVENT_IDX) | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC)) <
	    0)
		guest_fail("virtio-rng: feature negotiation");
	gprintf("RNG FEATURES: version1=%u event_idx=%u indirect=%u\n",
		(d.features & VIRTIO_BIT(VIRTIO_F_VERSION_1)) != 0,
		(d.features & VIRTIO_BIT(VIRTIO_F_EVENT_IDX)) != 0,
		(d.features & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC)) != 0);
	struct vq q;
	if (virtio_queue_setup(&d, &q, 0, 64) < 0)
		guest_fail("virtio-rng: queue set-up");
	virtio_driver_ok(&d);

	uint8_t *buf = virtio_alloc(64, 64);
	struct vbuf in = {vaddr(buf), 64};
	int len = vq_transfer(&q, 0, 0, &in, 1);
	if (len < 0)
		guest_fail("virtio-rng: no answer to a direct chain");
	gprintf("RNG LEN: %d\n", len);
	gprintf("RNG BYTES: ");
	for (int i = 0; i < 16; i++)
		gprintf("%02x", buf[i]);
	gprintf("\n");
	if (all_zero(buf, 64))
		guest_fail("virtio-rng: 64 zero bytes");

	/* the same through an indirect table of two writable buffers */
	uint8_t *ibuf = virtio_alloc(48, 16);
	struct virtq_desc *table = virtio_alloc(2 * 16, 16);
	struct vbuf two[2] = {{vaddr(ibuf), 16}, {vaddr(ibuf) + 16, 32}};
	int head = vq_add_indirect(&q, table, 0, 0, two, 2);
	uint32_t id, ulen;
	if (head < 0)
		guest_fail("virtio-rng: indirect add");
	vq_publish(&q, (uint16_t)head);
	vq_kick(&q);
	if (vq_wait_used(&q, &id, &ulen, STOP_WAIT_TICKS) < 0 || id != (uint32_t)head)
		guest_fail("virtio-rng: no answer to an indirect chain");
	gprintf("RNG INDIRECT: %u\n", ulen);
	if (all_zero(ibuf + 16, 32))
		guest_fail("virtio-rng: indirect buffer left zero");

	/* a batch behind one kick: the device takes them all, we count what comes back */
	uint8_t *bbuf = virtio_alloc(BATCH * 16, 16);
	for (int i = 0; i < BATCH; i++) {
		struct vbuf b = {vaddr(bbuf) + 16u * (uint32_t)i, 16};
		head = vq_add(&q, 0, 0, &b, 1);
		if (head < 0)
			guest_fail("virtio-rng: batch add");
		vq_publish(&q, (uint16_t)head);
	}
	vq_kick(&q);
	int got = 0;
	uint32_t total = 0;
	while (got < BATCH && vq_wait_used(&q, &id, &ulen, STOP_WAIT_TICKS) == 0) {
		got++;
		total += ulen;
	}
	gprintf("RNG BATCH: %d chains, %u bytes\n", got, total);
	/* round trips one at a time: kick (ioeventfd) -> worker -> used ring, polled */
	uint64_t t0 = rdtsc();
	for (int i = 0; i < ROUND_TRIPS; i++) {
		struct vbuf b = {vaddr(bbuf), 16};
		if (vq_transfer(&q, 0, 0, &b, 1) != 16)
			guest_fail("virtio-rng: round trip");
	}
	uint32_t rem;
	gprintf("RNG ROUND TRIP TSC: %llu\n", udiv64(rdtsc() - t0, ROUND_TRIPS, &rem));
	gprintf("RNG STATUS: 0x%02x\n", virtio_status(&d));
	virtio_reset(&d);
	gprintf("RNG DONE\n");
}
