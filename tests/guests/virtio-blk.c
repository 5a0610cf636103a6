/* virtio-blk through the guest virtio library.
 *
 * Default: get-id, a read of what the host put in the image, a write + flush + read-back,
 * discard and write-zeroes, a chain through an indirect table, a read past the end and an
 * unknown request type; each prints `BLK ...: status` for the host to check (and the host
 * checks the file after vessel exits). Command-line words change what it does:
 *   blk.wait           print `BLK WAITING` and wait for a line on COM1 before powering off
 *                      (the host looks at vessel's open files meanwhile)
 *   blk.hostile        malformed requests (a read into a device-readable buffer, a short
 *                      header, a write with a device-writable buffer), each followed by
 *                      `BLK HOSTILE ...: 0xSTATUS` and a reset; then a good read
 *   blk.bench=MODE     seqread, seqwrite or randread instead of the checks: `blk.bs=` bytes
 *                      a request (K/M suffixes), `blk.depth=` requests in flight,
 *                      `blk.total=` bytes in all (K/M); prints `BENCH START` and `BENCH END` so
 *                      the host times what lies between (bench/blk.sh, the rate-limit test)
 * The same file runs under QEMU microvm (acpi=off): without an FADT it leaves through
 * isa-debug-exit (port 0x501). */
#include "acpi.h"
#include "guest.h"
#include "virtio.h"

#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define T_DISCARD 11
#define T_WRITE_ZEROES 13

#define SECTOR 512
#define MAX_DEPTH 64
#define IO_TIMEOUT (10 * STOP_WAIT_TICKS) /* a rate-limited request may wait a while */

struct blk_hdr {
	uint32_t type, reserved;
	uint64_t sector;
};

struct blk_range {
	uint64_t sector;
	uint32_t num_sectors, flags;
};

/* One request's header and status, in memory the device can see. */
struct slot {
	struct blk_hdr hdr;
	uint8_t status;
	uint8_t *data;
};

static struct vdev dev;
static struct vq q;
static struct slot *slots;

/* `key=value` on the command line (before ` -- `): the value, or 0. */
static const char *param(const char *key)
{
	for (const char *s = guest_cmdline(); *s;) {
		while (*s == ' ')
			s++;
		if (s[0] == '-' && s[1] == '-' && s[2] == ' ')
			return 0;
		const char *k = key, *w = s;
		while (*k && *w == *k)
			k++, w++;
		if (!*k && (*w == '=' || *w == ' ' || !*w))
			return *w == '=' ? w + 1 : w;
		while (*s && *s != ' ')
			s++;
	}
	return 0;
}

static uint32_t param_num(const char *key, uint32_t dflt)
{
	const char *v = param(key);
	if (!v || *v < '0' || *v > '9')
		return dflt;
	uint32_t n = 0;
	for (; *v >= '0' && *v <= '9'; v++)
		n = n * 10 + (uint32_t)(*v - '0');
	if (*v == 'K' || *v == 'k')
		n <<= 10;
	else if (*v == 'M' || *v == 'm')
		n <<= 20;
	return n;
}

static bool param_is(const char *key, const char *want)
{
	const char *v = param(key);
	if (!v)
		return false;
	while (*want && *v == *want)
		v++, want++;
	return !*want && (*v == ' ' || !*v);
}

static bool has(unsigned feature)
{
	return (dev.features & VIRTIO_BIT(feature)) != 0;
}

/* Queues one request in slot s (not yet kicked): header out, then data, then status.
 * Returns the chain's head. */
static uint16_t post(struct slot *s, uint32_t type, uint64_t sector, void *data, uint32_t len,
		     bool data_writable)
{
	s->hdr = (struct blk_hdr){type, 0, sector};
	s->status = 0xff;
	struct vbuf out[2] = {{vaddr(&s->hdr), sizeof(s->hdr)}, {vaddr(data), len}};
	struct vbuf in[2] = {{vaddr(data), len}, {vaddr(&s->status), 1}};
	int head;
	if (!len)
		head = vq_add(&q, out, 1, in + 1, 1);
	else if (data_writable)
		head = vq_add(&q, out, 1, in, 2);
	else
		head = vq_add(&q, out, 2, in + 1, 1);
	if (head < 0)
		guest_fail("virtio-blk: queue full");
	vq_publish(&q, (uint16_t)head);
	return (uint16_t)head;
}

/* One request, waited for: the status byte (0xff: no answer), *used gets the used length. */
static int request(uint32_t type, uint64_t sector, void *data, uint32_t len, bool writable,
		   uint32_t *used)
{
	post(&slots[0], type, sector, data, len, writable);
	vq_kick(&q);
	uint32_t id, ulen;
	if (vq_wait_used(&q, &id, &ulen, IO_TIMEOUT) < 0)
		return 0xff;
	if (used)
		*used = ulen;
	return slots[0].status;
}

static uint32_t sum32(const uint8_t *p, uint32_t n)
{
	uint32_t s = 0;
	for (uint32_t i = 0; i < n; i++)
		s = s * 31 + p[i];
	return s;
}

static void print_text(const char *key, const uint8_t *p, uint32_t max)
{
	char text[64];
	uint32_t n = 0;
	while (n < max && n < sizeof(text) - 1 && p[n] >= 0x20 && p[n] < 0x7f)
		text[n] = (char)p[n], n++;
	text[n] = 0;
	gprintf("%s: %s\n", key, text);
}

static void checks(uint64_t capacity)
{
	uint8_t *buf = virtio_alloc(8192, 4096);
	uint8_t *id = virtio_alloc(32, 16);
	uint32_t used = 0;

	int st = request(T_GET_ID, 0, id, 20, true, &used);
	gprintf("BLK GET ID STATUS: %d\n", st);
	print_text("BLK ID", id, 20);

	st = request(T_IN, 0, buf, 4096, true, &used);
	gprintf("BLK READ STATUS: %d\n", st);
	gprintf("BLK READ USED: %u\n", used);
	print_text("BLK READ", buf, 48);
	gprintf("BLK READ SUM: %08x\n", sum32(buf, 4096));

	/* sector 8: a pattern the host looks for in the file afterwards */
	for (uint32_t i = 0; i < 4096; i++)
		buf[4096 + i] = (uint8_t)("guest wrote this sector. "[i % 25]);
	st = request(T_OUT, 8, buf + 4096, 4096, false, 0);
	gprintf("BLK WRITE STATUS: %d\n", st);
	gprintf("BLK FLUSH STATUS: %d\n", request(T_FLUSH, 0, 0, 0, false, 0));
	memset(buf, 0, 4096);
	st = request(T_IN, 8, buf, 4096, true, 0);
	gprintf("BLK READBACK: %s\n",
		st == 0 && !memcmp(buf, buf + 4096, 4096) ? "same" : "differs");

	struct blk_range *r = virtio_alloc(sizeof(*r), 16);
	if (has(VIRTIO_BLK_F_DISCARD)) {
		*r = (struct blk_range){16, 8, 0};
		gprintf("BLK DISCARD STATUS: %d\n", request(T_DISCARD, 0, r, sizeof(*r), false, 0));
	} else {
		gprintf("BLK DISCARD STATUS: not offered\n");
	}
	if (has(VIRTIO_BLK_F_WRITE_ZEROES)) {
		*r = (struct blk_range){24, 8, 0};
		gprintf("BLK WRITE ZEROES STATUS: %d\n",
			request(T_WRITE_ZEROES, 0, r, sizeof(*r), false, 0));
	} else {
		gprintf("BLK WRITE ZEROES STATUS: not offered\n");
	}

	/* a write split over two buffers through one indirect descriptor, read back directly */
	if (has(VIRTIO_F_INDIRECT_DESC)) {
		struct virtq_desc *table = virtio_alloc(4 * 16, 16);
		struct slot *s = &slots[1];
		s->hdr = (struct blk_hdr){T_OUT, 0, 40};
		s->status = 0xff;
		for (uint32_t i = 0; i < 1024; i++)
			buf[i] = (uint8_t)(i * 7 + 1);
		struct vbuf out[3] = {
		    {vaddr(&s->hdr), 16}, {vaddr(buf), 512}, {vaddr(buf) + 512, 512}};
		struct vbuf in = {vaddr(&s->status), 1};
		int head = vq_add_indirect(&q, table, out, 3, &in, 1);
		uint32_t hid, ulen;
		if (head < 0)
			guest_fail("virtio-blk: indirect add");
		vq_publish(&q, (uint16_t)head);
		vq_kick(&q);
		if (vq_wait_used(&q, &hid, &ulen, IO_TIMEOUT) < 0)
			guest_fail("virtio-blk: no answer to an indirect chain");
		st = request(T_IN, 40, buf + 4096, 1024, true, 0);
		gprintf("BLK INDIRECT: %s\n",
			s->status == 0 && st == 0 && !memcmp(buf, buf + 4096, 1024) ? "same"
										    : "differs");
	}

	gprintf("BLK PAST END STATUS: %d\n", request(T_IN, capacity, buf, 512, true, 0));
	gprintf("BLK LAST SECTOR STATUS: %d\n", request(T_IN, capacity - 1, buf, 512, true, 0));
	gprintf("BLK UNKNOWN TYPE STATUS: %d\n", request(99, 0, 0, 0, false, 0));
	gprintf("BLK DEVICE STATUS: 0x%02x\n", virtio_status(&dev));
}

static uint64_t want_features;

static void setup(void)
{
	if (virtio_init(&dev, want_features) < 0)
		guest_fail("virtio-blk: feature negotiation");
	if (virtio_queue_setup(&dev, &q, 0, 256) < 0)
		guest_fail("virtio-blk: queue set-up");
	virtio_driver_ok(&dev);
}

/* Posts one chain the device must refuse; prints the Status it ends with (NEEDS_RESET
 * expected, and no used entry), then resets and sets the device up again. */
static void hostile(const char *what, const struct vbuf *out, int n_out, const struct vbuf *in,
		    int n_in)
{
	int head = vq_add(&q, out, n_out, in, n_in);
	if (head < 0)
		guest_fail("virtio-blk: queue full");
	vq_publish(&q, (uint16_t)head);
	vq_kick(&q);
	uint64_t t0 = rdtsc();
	while (!(virtio_status(&dev) & VIRTIO_STATUS_NEEDS_RESET) && rdtsc() - t0 < STOP_WAIT_TICKS)
		cpu_relax();
	uint32_t id, len;
	bool used = vq_get_used(&q, &id, &len);
	gprintf("BLK HOSTILE %s: 0x%02x%s\n", what, virtio_status(&dev), used ? " (answered)" : "");
	virtio_reset(&dev);
	setup();
}

static void hostiles(void)
{
	uint8_t *buf = virtio_alloc(4096, 4096);
	struct slot *s = &slots[0];
	s->hdr = (struct blk_hdr){T_IN, 0, 0};
	struct vbuf hdr = {vaddr(&s->hdr), sizeof(s->hdr)}, data = {vaddr(buf), 512},
		    status = {vaddr(&s->status), 1};
	struct vbuf out2[2] = {hdr, data}, in2[2] = {data, status};
	hostile("READ INTO READ-ONLY BUFFER", out2, 2, &status, 1);
	struct vbuf shorthdr = {vaddr(&s->hdr), 8};
	hostile("SHORT HEADER", &shorthdr, 1, &status, 1);
	s->hdr = (struct blk_hdr){T_OUT, 0, 0};
	hostile("WRITE FROM WRITABLE BUFFER", &hdr, 1, in2, 2);
	hostile("NO STATUS", &hdr, 1, 0, 0);
	int st = request(T_IN, 0, buf, 4096, true, 0);
	gprintf("BLK AFTER RESET READ STATUS: %d\n", st);
	print_text("BLK AFTER RESET READ", buf, 48);
}

static uint32_t rand_state = 12345;

static uint32_t next_rand(void)
{
	rand_state = rand_state * 1103515245u + 12345u;
	return rand_state >> 8;
}

/* depth requests in flight: each completion is checked and its slot reposted at once,
 * and the device is kicked once per round of completions. */
static void bench(uint64_t capacity)
{
	bool write = param_is("blk.bench", "seqwrite");
	bool rnd = param_is("blk.bench", "randread");
	uint32_t bs = param_num("blk.bs", rnd ? 4096 : 1 << 20);
	uint32_t depth = param_num("blk.depth", rnd ? 32 : 4);
	uint64_t total = param_num("blk.total", 64u << 20);
	if (!bs || bs % SECTOR || depth == 0 || depth > MAX_DEPTH || bs > (1u << 24))
		guest_fail("virtio-blk: bad blk.bs or blk.depth");
	uint32_t per = bs / SECTOR;
	uint64_t span64 = udiv64(capacity, per, 0);
	uint32_t span = span64 > 0xffffffffu ? 0xffffffffu : (uint32_t)span64;
	if (!span)
		guest_fail("virtio-blk: disk smaller than one request");
	uint32_t ops = (uint32_t)udiv64(total, bs, 0);
	uint16_t slot_of[256];
	uint32_t submitted = 0, done = 0, errors = 0;
	uint32_t next = 0;

	for (uint32_t i = 0; i < depth; i++)
		slots[i].data = virtio_alloc(bs, 4096);
	gprintf("BENCH START: %s bs=%u depth=%u ops=%u\n",
		write ? "seqwrite"
		: rnd ? "randread"
		      : "seqread",
		bs, depth, ops);
	for (uint32_t i = 0; i < depth && submitted < ops; i++, submitted++) {
		uint32_t blk = rnd ? next_rand() % span : next++ % span;
		uint16_t head = post(&slots[i], write ? T_OUT : T_IN, (uint64_t)blk * per,
				     slots[i].data, bs, !write);
		slot_of[head & 255] = (uint16_t)i;
	}
	vq_kick(&q);
	while (done < ops) {
		uint32_t id, len;
		if (vq_wait_used(&q, &id, &len, IO_TIMEOUT) < 0)
			guest_fail("virtio-blk: bench request not answered");
		do {
			struct slot *s = &slots[slot_of[id & 255]];
			errors += s->status != 0;
			done++;
			if (submitted < ops) {
				uint32_t blk = rnd ? next_rand() % span : next++ % span;
				uint16_t head = post(s, write ? T_OUT : T_IN, (uint64_t)blk * per,
						     s->data, bs, !write);
				slot_of[head & 255] = (uint16_t)(s - slots);
				submitted++;
			}
		} while (vq_get_used(&q, &id, &len));
		vq_kick(&q);
	}
	gprintf("BENCH END: ops=%u bytes=%llu errors=%u\n", done, (unsigned long long)done * bs,
		errors);
}

void guest_main(void)
{
	if (!virtio_find_id(VIRTIO_ID_BLOCK, 0, &dev))
		guest_fail("no virtio-blk device on the command line");
	want_features = VIRTIO_BIT(VIRTIO_F_EVENT_IDX) | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) |
			VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_RO) |
			VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) | VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) |
			VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) | VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES);
	setup();
	slots = virtio_alloc(MAX_DEPTH * sizeof(*slots), 16);
	uint64_t capacity = virtio_config32(&dev, 0) | (uint64_t)virtio_config32(&dev, 4) << 32;
	gprintf("BLK CAPACITY: %llu\n", (unsigned long long)capacity);
	gprintf(
	    "BLK FEATURES: ro=%u flush=%u discard=%u write_zeroes=%u indirect=%u event_idx=%u\n",
	    has(VIRTIO_BLK_F_RO), has(VIRTIO_BLK_F_FLUSH), has(VIRTIO_BLK_F_DISCARD),
	    has(VIRTIO_BLK_F_WRITE_ZEROES), has(VIRTIO_F_INDIRECT_DESC), has(VIRTIO_F_EVENT_IDX));
	if (capacity < 64)
		guest_fail("virtio-blk: the test disk must be at least 32 KiB");

	if (param("blk.bench"))
		bench(capacity);
	else if (param("blk.hostile"))
		hostiles();
	else
		checks(capacity);

	if (param("blk.wait")) {
		gprintf("BLK WAITING\n");
		while (serial_getc() != '\n')
			;
	}
	virtio_reset(&dev);
	gprintf("BLK DONE\n");
	if (!acpi_table("FACP")) { /* QEMU microvm with acpi=off */
		outb(0x501, 0);
		tsc_delay(STOP_WAIT_TICKS);
	}
}
