/* A hostile driver: posts every malformed chain the virtqueue walker must refuse (the
 * cases of tests/unit/test_virtio_queue.c) to virtio-rng, one per device life. After
 * each it expects DEVICE_NEEDS_RESET in Status and a configuration interrupt in the ISR,
 * resets the device and starts it again. At the end a well-formed request must still be
 * served: the VM and the device survived. */
#include "guest.h"
#include "virtio.h"

#define QSIZE 8

static struct vdev dev;
static struct vq q;
static int failures;

static void start(void)
{
	if (virtio_init(&dev, VIRTIO_BIT(VIRTIO_F_EVENT_IDX) | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC)) <
	    0)
		guest_fail("virtio-rng: feature negotiation");
	if (virtio_queue_setup(&dev, &q, 0, QSIZE) < 0)
		guest_fail("virtio-rng: queue set-up");
	virtio_driver_ok(&dev);
}

static void set_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	q.desc[i].addr = addr;
	q.desc[i].len = len;
	q.desc[i].flags = flags;
	q.desc[i].next = next;
}

/* Posts head as it is (no checks: that is the point) and waits for the device's verdict. */
static void post_and_expect_reset(const char *name, uint16_t head)
{
	vq_publish(&q, head);
	virtio_write(&dev, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	uint64_t t0 = rdtsc();
	uint32_t st;
	while (!((st = virtio_status(&dev)) & VIRTIO_STATUS_NEEDS_RESET) &&
	       rdtsc() - t0 < STOP_WAIT_TICKS)
		cpu_relax();
	uint32_t isr = virtio_isr_ack(&dev);
	bool ok = (st & VIRTIO_STATUS_NEEDS_RESET) && (isr & 2);
	gprintf("HOSTILE %s: %s (status 0x%02x isr 0x%x)\n", name, ok ? "NEEDS_RESET" : "MISSED",
		st, isr);
	if (!ok)
		failures++;
	virtio_reset(&dev);
	start();
}

static uint8_t *scratch;

void guest_main(void)
{
	if (!virtio_find_id(VIRTIO_ID_RNG, 0, &dev))
		guest_fail("no virtio-rng device on the command line");
	scratch = virtio_alloc(4096, 16);
	uint32_t buf = vaddr(scratch);
	start();

	post_and_expect_reset("head-out-of-range", QSIZE + 3);

	set_desc(0, buf, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 200);
	post_and_expect_reset("next-out-of-range", 0);

	set_desc(0, 0xe0000000u, 64, VIRTQ_DESC_F_WRITE, 0); /* the MMIO hole */
	post_and_expect_reset("address-outside-ram", 0);

	set_desc(0, 0xfffffffffffff000ull, 0x2000, VIRTQ_DESC_F_WRITE, 0); /* addr + len wraps */
	post_and_expect_reset("length-overflow", 0);

	set_desc(0, buf, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	set_desc(1, buf + 16, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
	post_and_expect_reset("loop", 0);

	/* 300 one-byte writable buffers behind one indirect descriptor */
	struct virtq_desc *table = virtio_alloc(300 * 16, 16);
	for (uint16_t i = 0; i < 300; i++)
		table[i] = (struct virtq_desc){
		    buf + i, 1,
		    (uint16_t)(VIRTQ_DESC_F_WRITE | (i + 1 < 300 ? VIRTQ_DESC_F_NEXT : 0)),
		    (uint16_t)(i + 1)};
	set_desc(0, vaddr(table), 300 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	post_and_expect_reset("over-long-chain", 0);

	set_desc(0, buf, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	set_desc(1, buf + 16, 16, 0, 0);
	post_and_expect_reset("readable-after-writable", 0);

	set_desc(0, buf, 16, 0, 0);
	post_and_expect_reset("readable-buffer-for-rng", 0);

	set_desc(0, vaddr(table), 24, VIRTQ_DESC_F_INDIRECT, 0);
	post_and_expect_reset("indirect-bad-length", 0);

	table[0] = (struct virtq_desc){vaddr(table) + 32, 16, VIRTQ_DESC_F_INDIRECT, 0};
	set_desc(0, vaddr(table), 16, VIRTQ_DESC_F_INDIRECT, 0);
	post_and_expect_reset("nested-indirect", 0);

	/* the driver's index runs ahead by more than the queue holds */
	q.avail->idx = (uint16_t)(q.avail_idx + 100);
	q.avail_idx = (uint16_t)(q.avail_idx + 99);
	post_and_expect_reset("avail-index-jump", 0);

	/* a queue whose descriptor table lies outside RAM fails at DRIVER_OK */
	virtio_reset(&dev);
	virtio_init(&dev, 0);
	virtio_write(&dev, VIRTIO_MMIO_QUEUE_SEL, 0);
	virtio_write(&dev, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	virtio_write(&dev, VIRTIO_MMIO_QUEUE_DESC_LOW, 0xe0000000u);
	virtio_write(&dev, VIRTIO_MMIO_QUEUE_DRIVER_LOW, buf);
	virtio_write(&dev, VIRTIO_MMIO_QUEUE_DEVICE_LOW, buf + 1024);
	virtio_write(&dev, VIRTIO_MMIO_QUEUE_READY, 1);
	virtio_driver_ok(&dev);
	uint32_t st = virtio_status(&dev);
	gprintf("HOSTILE ring-outside-ram: %s (status 0x%02x isr 0x%x)\n",
		st & VIRTIO_STATUS_NEEDS_RESET ? "NEEDS_RESET" : "MISSED", st,
		virtio_isr_ack(&dev));
	if (!(st & VIRTIO_STATUS_NEEDS_RESET))
		failures++;
	virtio_reset(&dev);
	start();

	/* after all that, an honest request */
	struct vbuf in = {buf + 2048, 32};
	memset(scratch + 2048, 0, 32);
	int len = vq_transfer(&q, 0, 0, &in, 1);
	gprintf("HOSTILE RECOVERED: %d\n", len);
	gprintf("HOSTILE MISSED: %d\n", failures);
}
