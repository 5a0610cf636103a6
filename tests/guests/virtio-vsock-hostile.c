/* A hostile vsock driver: tx packets whose headers break the rules (a source CID not its
 * own, a length past the buffers, an unknown op, a header cut short, a payload on a
 * control op) and an rx buffer too small for a header, one per device life. After each it
 * expects DEVICE_NEEDS_RESET and a configuration interrupt, resets the device and starts
 * it again. At the end an honest REQUEST to a host port nobody serves must come back as an
 * RST: the VM and the device survived. Also prints the CID from config space.
 *
 * With `vsock-ignore` on the command line it then plays a guest that never answers the
 * host: it takes the host's REQUEST, says nothing, and reports what the device sends next
 * (an RST for the same ports once the device gives up, after 2 s). */
#include "guest.h"
#include "virtio.h"

#define VIRTIO_ID_VSOCK 19
#define QSIZE 8
#define HDR 44
#define OP_REQUEST 1
#define OP_RST 3
#define OP_RW 5

static struct vdev dev;
static struct vq rxq, txq, evq;
static int failures;
static uint8_t *pkt, *rxbuf;
static uint64_t cid;

static void start(void)
{
	if (virtio_init(&dev, 0) < 0)
		guest_fail("virtio-vsock: feature negotiation");
	if (virtio_queue_setup(&dev, &rxq, 0, QSIZE) < 0 ||
	    virtio_queue_setup(&dev, &txq, 1, QSIZE) < 0 ||
	    virtio_queue_setup(&dev, &evq, 2, QSIZE) < 0)
		guest_fail("virtio-vsock: queue set-up");
	virtio_driver_ok(&dev);
}

static void put(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void header(uint64_t src_cid, uint32_t len, uint16_t op)
{
	memset(pkt, 0, HDR);
	put(pkt + 0, src_cid, 8);
	put(pkt + 8, 2, 8);	/* the host */
	put(pkt + 16, 1234, 4); /* src_port */
	put(pkt + 20, 5555, 4); /* dst_port: nobody there */
	put(pkt + 24, len, 4);
	put(pkt + 28, 1, 2); /* stream */
	put(pkt + 30, op, 2);
	put(pkt + 36, 65536, 4); /* buf_alloc */
}

static void expect_reset(const char *name)
{
	uint64_t t0 = rdtsc();
	uint32_t st;
	while (!((st = virtio_status(&dev)) & VIRTIO_STATUS_NEEDS_RESET) &&
	       rdtsc() - t0 < STOP_WAIT_TICKS)
		cpu_relax();
	uint32_t isr = virtio_isr_ack(&dev);
	bool ok = (st & VIRTIO_STATUS_NEEDS_RESET) && (isr & 2);
	gprintf("VSOCK %s: %s (status 0x%02x isr 0x%x)\n", name, ok ? "NEEDS_RESET" : "MISSED", st,
		isr);
	if (!ok)
		failures++;
	virtio_reset(&dev);
	start();
}

static void send(uint32_t buf_len)
{
	struct vbuf out = {vaddr(pkt), buf_len};
	int head = vq_add(&txq, &out, 1, 0, 0);
	if (head < 0)
		guest_fail("virtio-vsock: tx queue full");
	vq_publish(&txq, (uint16_t)head);
	vq_kick(&txq);
}

static void send_expect_reset(const char *name, uint32_t buf_len)
{
	send(buf_len);
	expect_reset(name);
}

/* `word` alone on the command line (before ` -- `) */
static bool has_word(const char *word)
{
	for (const char *s = guest_cmdline(); *s;) {
		while (*s == ' ')
			s++;
		if (s[0] == '-' && s[1] == '-' && (s[2] == ' ' || !s[2]))
			return false;
		const char *w = word;
		while (*w && *s == *w)
			s++, w++;
		if (!*w && (*s == ' ' || !*s))
			return true;
		while (*s && *s != ' ')
			s++;
	}
	return false;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The next packet for the guest into rxbuf (header fields decoded), or false after `ticks`. */
static bool next_packet(uint64_t ticks, uint32_t *op, uint32_t *src_port, uint32_t *dst_port)
{
	struct vbuf in = {vaddr(rxbuf), 4096};
	memset(rxbuf, 0, HDR);
	int head = vq_add(&rxq, 0, 0, &in, 1);
	if (head < 0)
		guest_fail("virtio-vsock: rx queue full");
	vq_publish(&rxq, (uint16_t)head);
	vq_kick(&rxq);
	uint32_t id, len;
	if (vq_wait_used(&rxq, &id, &len, ticks) < 0)
		return false;
	*op = (uint32_t)(rxbuf[30] | rxbuf[31] << 8);
	*src_port = get32(rxbuf + 16);
	*dst_port = get32(rxbuf + 20);
	return true;
}

static void ignore_the_host(void)
{
	/* the RECOVERED exchange left an rx buffer on the ring only if it got no answer */
	gprintf("VSOCK IGNORING\n");
	uint32_t op, host_port, port;
	if (!next_packet(20 * STOP_WAIT_TICKS, &op, &host_port, &port) || op != OP_REQUEST) {
		gprintf("VSOCK IGNORED: no REQUEST came\n");
		return;
	}
	gprintf("VSOCK IGNORED: REQUEST to port %u\n", (unsigned)port);
	uint32_t op2, from, to;
	if (!next_packet(20 * STOP_WAIT_TICKS, &op2, &from, &to))
		gprintf("VSOCK AFTER IGNORING: nothing\n");
	else
		gprintf("VSOCK AFTER IGNORING: op %u same ports %d\n", (unsigned)op2,
			from == host_port && to == port);
}

void guest_main(void)
{
	if (!virtio_find_id(VIRTIO_ID_VSOCK, 0, &dev))
		guest_fail("no virtio-vsock device on the command line");
	pkt = virtio_alloc(4096, 16);
	rxbuf = virtio_alloc(4096, 16);
	start();
	cid = virtio_config32(&dev, 0) | (uint64_t)virtio_config32(&dev, 4) << 32;
	gprintf("VSOCK CID: %u\n", (unsigned)cid);

	header(cid + 1, 0, OP_REQUEST);
	send_expect_reset("wrong-src-cid", HDR);
	header(cid, 100, OP_RW);
	send_expect_reset("len-past-buffers", HDR + 10);
	header(cid, 0, 9);
	send_expect_reset("unknown-op", HDR);
	header(cid, 0, OP_REQUEST);
	send_expect_reset("short-header", HDR - 4);
	header(cid, 8, OP_REQUEST);
	send_expect_reset("payload-on-control-op", HDR + 8);

	/* the device has an RST to give (nobody at port 5555) and only 16 bytes to put it in */
	struct vbuf small = {vaddr(rxbuf), 16};
	int head = vq_add(&rxq, 0, 0, &small, 1);
	vq_publish(&rxq, (uint16_t)head);
	vq_kick(&rxq);
	header(cid, 0, OP_REQUEST);
	send_expect_reset("rx-buffer-too-small", HDR);

	/* after all that, an honest connection attempt is refused the honest way */
	struct vbuf in = {vaddr(rxbuf), 4096};
	memset(rxbuf, 0, 64);
	head = vq_add(&rxq, 0, 0, &in, 1);
	vq_publish(&rxq, (uint16_t)head);
	vq_kick(&rxq);
	header(cid, 0, OP_REQUEST);
	send(HDR);
	uint32_t id, len;
	if (vq_wait_used(&rxq, &id, &len, STOP_WAIT_TICKS) < 0)
		gprintf("VSOCK RECOVERED: no answer\n");
	else
		gprintf("VSOCK RECOVERED: op %u len %u to port %u\n",
			(unsigned)(rxbuf[30] | rxbuf[31] << 8), (unsigned)len,
			(unsigned)(rxbuf[20] | rxbuf[21] << 8));
	gprintf("VSOCK MISSED: %d\n", failures);
	if (has_word("vsock-ignore"))
		ignore_the_host();
}
