/* virtio-net through the guest virtio library: a few hand-built frames to the host's own
 * network stack on the far side of a tap, and what came back. The command line says where:
 *   vnet.host=A.B.C.D vnet.guest=A.B.C.D   addresses (the test gives the tap the host one)
 *   vnet.udp=PORT [vnet.big=N]             UDP to an echo server: 100 bytes, then N bytes
 *   vnet.only=features|arp|badtx|badrx|bench|rxcount   one part only
 *   vnet.frames=N vnet.size=BYTES          bench: N frames of BYTES (>1514: one TSO frame);
 *                                          rxcount: wait for N UDP frames from the host
 *   vnet.dev=N                             the N-th virtio-net device (from 0)
 *   vnet.no_guest_csum=1                   leave out GUEST_CSUM and GUEST_TSO4/6
 * Lines: MAC, LINK, FEATURES, ARP REPLY, PING REPLY, UDP REPLY, UDP BIG REPLY, TX ...
 * The same file runs under QEMU microvm (acpi=off): without an FADT it leaves through
 * isa-debug-exit (port 0x501). */
#include "acpi.h"
#include "guest.h"
#include "virtio.h"

/* virtio-net (5.1.3) */
#define NET_F_CSUM 0
#define NET_F_GUEST_CSUM 1
#define NET_F_MAC 5
#define NET_F_GUEST_TSO4 7
#define NET_F_GUEST_TSO6 8
#define NET_F_HOST_TSO4 11
#define NET_F_HOST_TSO6 12
#define NET_F_MRG_RXBUF 15
#define NET_F_STATUS 16
#define HDR_F_NEEDS_CSUM 1
#define GSO_TCPV4 1
#define HDR_LEN 12

#define RXQ 0
#define TXQ 1
#define RX_BUFS 32
#define RX_BUF_LEN 2048
#define FRAME_MAX (HDR_LEN + 65536)
#define ETH_ARP 0x0806
#define ETH_IP 0x0800

struct net_hdr {
	uint8_t flags, gso_type;
	uint16_t hdr_len, gso_size, csum_start, csum_offset, num_buffers;
} __attribute__((packed));

static struct vdev dev;
static struct vq rxq, txq;
static uint8_t mac[6], host_mac[6];
static uint32_t host_ip, guest_ip; /* host byte order */
static uint8_t *rx_buf[256];	   /* the buffer behind each rx head */
static uint8_t *frame;		   /* the frame being assembled from rx buffers */
static uint8_t *tx;		   /* one transmit buffer: header + frame */
static bool have_host_mac;
static bool bad_rx_first; /* net_setup posts a read-only receive buffer first */

static uint32_t htonl(uint32_t v)
{
	return v << 24 | (v & 0xff00) << 8 | (v >> 8 & 0xff00) | v >> 24;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---------------------------------------------------------------- command line */

static const char *arg(const char *key)
{
	const char *s = guest_cmdline();
	uint32_t n = 0;
	while (key[n])
		n++;
	for (; *s; s++) {
		if ((s == guest_cmdline() || s[-1] == ' ') && memcmp(s, key, n) == 0 && s[n] == '=')
			return s + n + 1;
	}
	return 0;
}

static uint32_t arg_num(const char *key, uint32_t dflt)
{
	const char *s = arg(key);
	if (!s || *s < '0' || *s > '9')
		return dflt;
	uint32_t v = 0;
	while (*s >= '0' && *s <= '9')
		v = v * 10 + (uint32_t)(*s++ - '0');
	return v;
}

static uint32_t arg_ip(const char *key, uint32_t dflt)
{
	const char *s = arg(key);
	if (!s)
		return dflt;
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		uint32_t part = 0;
		if (*s < '0' || *s > '9')
			return dflt;
		while (*s >= '0' && *s <= '9')
			part = part * 10 + (uint32_t)(*s++ - '0');
		v = v << 8 | (part & 0xff);
		if (i < 3 && *s++ != '.')
			return dflt;
	}
	return v;
}

static bool only(const char *what)
{
	const char *s = arg("vnet.only");
	if (!s)
		return false;
	while (*what)
		if (*s++ != *what++)
			return false;
	return *s == ' ' || *s == '\0';
}

/* ---------------------------------------------------------------- device */

static void rx_post(uint8_t *buf)
{
	struct vbuf b = {vaddr(buf), RX_BUF_LEN};
	int head = vq_add(&rxq, 0, 0, &b, 1);
	if (head < 0)
		guest_fail("virtio-net: rx queue full");
	rx_buf[head] = buf;
	vq_publish(&rxq, (uint16_t)head);
}

static void net_setup(void)
{
	if (!virtio_find_id(VIRTIO_ID_NET, (int)arg_num("vnet.dev", 0), &dev))
		guest_fail("no virtio-net device on the command line");
	uint64_t want = VIRTIO_BIT(NET_F_CSUM) | VIRTIO_BIT(NET_F_MAC) |
			VIRTIO_BIT(NET_F_HOST_TSO4) | VIRTIO_BIT(NET_F_HOST_TSO6) |
			VIRTIO_BIT(NET_F_MRG_RXBUF) | VIRTIO_BIT(NET_F_STATUS) |
			VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
	if (!arg("vnet.no_guest_csum"))
		want |= VIRTIO_BIT(NET_F_GUEST_CSUM) | VIRTIO_BIT(NET_F_GUEST_TSO4) |
			VIRTIO_BIT(NET_F_GUEST_TSO6);
	if (virtio_init(&dev, want) < 0)
		guest_fail("virtio-net: feature negotiation");
	if (!(dev.features & VIRTIO_BIT(NET_F_MRG_RXBUF)))
		guest_fail("virtio-net: no mergeable receive buffers");
	for (int i = 0; i < 6; i++)
		mac[i] = virtio_config8(&dev, (uint32_t)i);
	if (virtio_queue_setup(&dev, &rxq, RXQ, 64) < 0 ||
	    virtio_queue_setup(&dev, &txq, TXQ, 256) < 0)
		guest_fail("virtio-net: queue set-up");
	virtio_driver_ok(&dev);
	if (!frame) {
		frame = virtio_alloc(FRAME_MAX, 64);
		tx = virtio_alloc(FRAME_MAX, 64);
	}
	uint8_t *bufs = virtio_alloc(RX_BUFS * RX_BUF_LEN, 64);
	if (bad_rx_first) {
		struct vbuf b = {vaddr(bufs), RX_BUF_LEN};
		int head = vq_add(&rxq, &b, 1, 0, 0);
		if (head < 0)
			guest_fail("virtio-net: rx add");
		vq_publish(&rxq, (uint16_t)head);
	}
	for (int i = bad_rx_first; i < RX_BUFS; i++)
		rx_post(bufs + i * RX_BUF_LEN);
	vq_kick(&rxq);
}

/* Sends tx[0 .. HDR_LEN + len) and waits until the device is done with it. */
static void send(uint32_t len)
{
	struct vbuf b = {vaddr(tx), HDR_LEN + len};
	if (vq_transfer(&txq, &b, 1, 0, 0) >= 0)
		return;
	/* badrx: the host's answer to an earlier ARP met the read-only buffer while this one
	 * was on its way, and a failed device takes nothing more until it is reset (which is
	 * what bad_rx waits for); net_setup gives the queue new rings */
	if (bad_rx_first && (virtio_status(&dev) & VIRTIO_STATUS_NEEDS_RESET))
		return;
	guest_fail("virtio-net: the device did not take a frame");
}

/* The next received frame into `frame` (header included): its length and buffer count, or
 * 0 if none came within timeout ticks. */
static uint32_t receive(uint64_t timeout, uint32_t *nbufs)
{
	uint32_t id, len;
	if (vq_wait_used(&rxq, &id, &len, timeout) < 0)
		return 0;
	if (id >= 256 || !rx_buf[id] || len > RX_BUF_LEN)
		guest_fail("virtio-net: bad used element on the rx queue");
	memcpy(frame, rx_buf[id], len);
	rx_post(rx_buf[id]);
	uint32_t total = len, n = ((struct net_hdr *)frame)->num_buffers;
	if (n == 0 || n > RX_BUFS)
		guest_fail("virtio-net: bad num_buffers");
	for (uint32_t i = 1; i < n; i++) {
		if (vq_wait_used(&rxq, &id, &len, STOP_WAIT_TICKS) < 0)
			guest_fail("virtio-net: a merged frame's next buffer never came");
		if (id >= 256 || !rx_buf[id] || len > RX_BUF_LEN || total + len > FRAME_MAX)
			guest_fail("virtio-net: bad used element on the rx queue");
		memcpy(frame + total, rx_buf[id], len);
		total += len;
		rx_post(rx_buf[id]);
	}
	vq_kick(&rxq);
	*nbufs = n;
	return total;
}

/* ---------------------------------------------------------------- frames */

static uint8_t *eth(const uint8_t *dst, uint16_t type)
{
	memset(tx, 0, HDR_LEN);
	memcpy(tx + HDR_LEN, dst, 6);
	memcpy(tx + HDR_LEN + 6, mac, 6);
	tx[HDR_LEN + 12] = (uint8_t)(type >> 8);
	tx[HDR_LEN + 13] = (uint8_t)type;
	return tx + HDR_LEN + 14;
}

static void send_arp(uint16_t op, const uint8_t *tha, uint32_t tpa)
{
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	uint8_t *a = eth(op == 1 ? bcast : tha, ETH_ARP);
	static const uint8_t fixed[8] = {0, 1, 8, 0, 6, 4, 0, 0};
	memcpy(a, fixed, 8);
	a[7] = (uint8_t)op;
	memcpy(a + 8, mac, 6);
	uint32_t spa = htonl(guest_ip), t = htonl(tpa);
	memcpy(a + 14, &spa, 4);
	memset(a + 18, 0, 6);
	if (op == 2)
		memcpy(a + 18, tha, 6);
	memcpy(a + 24, &t, 4);
	send(14 + 28);
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static uint32_t csum_add(uint32_t sum, const uint8_t *p, uint32_t len)
{
	for (uint32_t i = 0; i + 1 < len; i += 2)
		sum += get16(p + i);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

/* An IPv4 header to the host; returns where the payload goes. */
static uint8_t *ip4(uint8_t proto, uint32_t payload_len)
{
	uint8_t *ip = eth(host_mac, ETH_IP);
	uint16_t total = (uint16_t)(20 + payload_len);
	uint8_t h[20] = {0x45, 0, (uint8_t)(total >> 8), (uint8_t)total, 0, 1, 0x40, 0, 64, proto};
	uint32_t s = htonl(guest_ip), d = htonl(host_ip);
	memcpy(h + 12, &s, 4);
	memcpy(h + 16, &d, 4);
	uint16_t c = (uint16_t)~csum_fold(csum_add(0, h, 20));
	h[10] = (uint8_t)(c >> 8);
	h[11] = (uint8_t)c;
	memcpy(ip, h, 20);
	return ip + 20;
}

/* Handles ARP for us (answers requests, learns the host) and returns the IPv4 payload of a
 * frame from the host with protocol proto, or NULL. */
static const uint8_t *classify(uint32_t len, uint8_t proto, uint32_t *plen)
{
	const uint8_t *e = frame + HDR_LEN;
	if (len < HDR_LEN + 14)
		return 0;
	uint16_t type = get16(e + 12);
	const uint8_t *p = e + 14;
	if (type == ETH_ARP && len >= HDR_LEN + 14 + 28 && get32(p + 24) == guest_ip) {
		if (get16(p + 6) == 2 && get32(p + 14) == host_ip) {
			memcpy(host_mac, p + 8, 6);
			have_host_mac = true;
		} else if (get16(p + 6) == 1) {
			uint8_t sha[6];
			memcpy(sha, p + 8, 6);
			send_arp(2, sha, get32(p + 14));
		}
		return 0;
	}
	if (type != ETH_IP || len < HDR_LEN + 14 + 20 || (p[0] >> 4) != 4 || p[9] != proto ||
	    get32(p + 12) != host_ip || get32(p + 16) != guest_ip)
		return 0;
	uint32_t ihl = (p[0] & 15u) * 4, total = get16(p + 2);
	if (total < ihl || HDR_LEN + 14 + total > len)
		return 0;
	*plen = total - ihl;
	return p + ihl;
}

static void resolve_host(void)
{
	uint64_t start = rdtsc(), last = 0;
	while (!have_host_mac) {
		uint64_t now = rdtsc();
		if (now - start > 20 * STOP_WAIT_TICKS)
			guest_fail("no ARP reply from the host");
		if (!last || now - last > STOP_WAIT_TICKS / 4) {
			send_arp(1, 0, host_ip);
			last = now;
		}
		uint32_t n, len = receive(STOP_WAIT_TICKS / 8, &n), plen;
		if (len)
			classify(len, 0, &plen);
	}
	gprintf("ARP REPLY: %u.%u.%u.%u is at %02x:%02x:%02x:%02x:%02x:%02x\n", host_ip >> 24,
		host_ip >> 16 & 255, host_ip >> 8 & 255, host_ip & 255, host_mac[0], host_mac[1],
		host_mac[2], host_mac[3], host_mac[4], host_mac[5]);
}

/* Waits for a frame of protocol proto; its payload or NULL after ~10 s. */
static const uint8_t *wait_ip(uint8_t proto, uint32_t *plen, uint32_t *nbufs)
{
	uint64_t start = rdtsc();
	while (rdtsc() - start < 10 * STOP_WAIT_TICKS) {
		uint32_t len = receive(STOP_WAIT_TICKS, nbufs);
		const uint8_t *p = len ? classify(len, proto, plen) : 0;
		if (p)
			return p;
	}
	return 0;
}

static void ping(void)
{
	uint8_t *icmp = ip4(1, 64);
	icmp[0] = 8;
	memset(icmp + 1, 0, 3);
	icmp[4] = 0x12, icmp[5] = 0x34, icmp[6] = 0, icmp[7] = 1;
	for (int i = 0; i < 56; i++)
		icmp[8 + i] = (uint8_t)('a' + i % 26);
	uint16_t c = (uint16_t)~csum_fold(csum_add(0, icmp, 64));
	icmp[2] = (uint8_t)(c >> 8), icmp[3] = (uint8_t)c;
	send(14 + 20 + 64);
	uint32_t plen, nb;
	const uint8_t *r = wait_ip(1, &plen, &nb);
	if (!r || plen != 64 || r[0] != 0 || get16(r + 4) != 0x1234)
		guest_fail("no ICMP echo reply");
	bool ok = true;
	for (int i = 0; i < 56; i++)
		ok &= r[8 + i] == (uint8_t)('a' + i % 26);
	gprintf("PING REPLY: from %u.%u.%u.%u seq %u bytes %u payload %s\n", host_ip >> 24,
		host_ip >> 16 & 255, host_ip >> 8 & 255, host_ip & 255, get16(r + 6), plen - 8,
		ok ? "ok" : "BAD");
}

/* "SIZE n" to the echo server, with the UDP checksum left to the device when it offers
 * VIRTIO_NET_F_CSUM; prints the answer's size, buffer count and pattern check. */
static void udp(uint16_t port, uint32_t size, const char *key)
{
	char msg[16] = "SIZE ";
	uint32_t n = 5, digits[10], nd = 0;
	for (uint32_t v = size; v || !nd; v /= 10)
		digits[nd++] = v % 10;
	while (nd)
		msg[n++] = (char)('0' + digits[--nd]);
	uint8_t *u = ip4(17, 8 + n);
	u[0] = 0x9c, u[1] = 0x40; /* source port 40000 */
	u[2] = (uint8_t)(port >> 8), u[3] = (uint8_t)port;
	u[4] = 0, u[5] = (uint8_t)(8 + n);
	memcpy(u + 8, msg, n);
	/* the pseudo-header sum: what the device completes over the UDP header and data */
	uint32_t s = htonl(guest_ip), d = htonl(host_ip), sum = 17 + 8 + n;
	sum = csum_add(csum_add(sum, (uint8_t *)&s, 4), (uint8_t *)&d, 4);
	struct net_hdr *h = (struct net_hdr *)tx;
	if (dev.features & VIRTIO_BIT(NET_F_CSUM)) {
		uint16_t c = csum_fold(sum);
		u[6] = (uint8_t)(c >> 8), u[7] = (uint8_t)c;
		h->flags = HDR_F_NEEDS_CSUM;
		h->csum_start = 14 + 20;
		h->csum_offset = 6;
	} else {
		u[6] = u[7] = 0;
		uint16_t c = (uint16_t)~csum_fold(csum_add(sum, u, 8 + n));
		u[6] = (uint8_t)(c >> 8), u[7] = (uint8_t)c;
	}
	send(14 + 20 + 8 + n);
	uint32_t plen, nbufs;
	const uint8_t *r = wait_ip(17, &plen, &nbufs);
	if (!r || plen < 8 || get16(r + 2) != 40000)
		guest_fail("no UDP reply");
	uint32_t got = get16(r + 4) - 8;
	bool ok = got == size && plen >= 8 + got;
	for (uint32_t i = 0; ok && i < got; i++)
		ok = r[8 + i] == (uint8_t)i;
	gprintf("%s: %u bytes in %u buffers, pattern %s\n", key, got, nbufs, ok ? "ok" : "BAD");
	/* with GUEST_CSUM the host may leave the checksum to us (NEEDS_CSUM); without it the
	 * device must hand over a complete, valid one */
	if (((struct net_hdr *)frame)->flags & HDR_F_NEEDS_CSUM) {
		gprintf("%s CSUM: partial\n", key);
	} else if (ok) {
		uint32_t hs = htonl(host_ip), gs = htonl(guest_ip), ulen = 8 + got;
		uint32_t sum = csum_add(csum_add(17 + ulen, (uint8_t *)&hs, 4), (uint8_t *)&gs, 4);
		bool valid = csum_fold(csum_add(sum, r, ulen)) == 0xffff;
		gprintf("%s CSUM: complete, %s\n", key, valid ? "valid" : "INVALID");
	}
}

static void print_features(void)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} names[] = {
	    {NET_F_CSUM, "CSUM"},
	    {NET_F_GUEST_CSUM, "GUEST_CSUM"},
	    {NET_F_MAC, "MAC"},
	    {NET_F_GUEST_TSO4, "GUEST_TSO4"},
	    {NET_F_GUEST_TSO6, "GUEST_TSO6"},
	    {NET_F_HOST_TSO4, "HOST_TSO4"},
	    {NET_F_HOST_TSO6, "HOST_TSO6"},
	    {NET_F_MRG_RXBUF, "MRG_RXBUF"},
	    {NET_F_STATUS, "STATUS"},
	    {VIRTIO_F_EVENT_IDX, "EVENT_IDX"},
	    {VIRTIO_F_VERSION_1, "VERSION_1"},
	};
	gprintf("FEATURES:");
	for (uint32_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (dev.features & VIRTIO_BIT(names[i].bit))
			gprintf(" %s", names[i].name);
	gprintf("\n");
	gprintf("LINK: %s\n", virtio_config8(&dev, 6) & 1 ? "up" : "down");
}

/* ---------------------------------------------------------------- a bad driver */

/* A transmit chain with a device-writable buffer: the device must ask for a reset. */
static void bad_tx(void)
{
	/* first a frame the host refuses (a TSO header with gso_size 0): dropped, no reset */
	static const uint8_t nobody[6] = {0x02, 0, 0, 0, 0, 0x01};
	memset(eth(nobody, ETH_IP), 0, 46);
	struct net_hdr *h = (struct net_hdr *)tx;
	h->flags = HDR_F_NEEDS_CSUM;
	h->gso_type = GSO_TCPV4;
	h->csum_start = 60000;
	send(60);
	if (virtio_status(&dev) & VIRTIO_STATUS_NEEDS_RESET)
		guest_fail("a frame the host refused reset the device");
	gprintf("REFUSED FRAME: the device goes on\n");

	struct vbuf out = {vaddr(tx), HDR_LEN + 60}, in = {vaddr(tx) + 4096, 64};
	memset(tx, 0, HDR_LEN + 60);
	int head = vq_add(&txq, &out, 1, &in, 1);
	if (head < 0)
		guest_fail("virtio-net: tx add");
	vq_publish(&txq, (uint16_t)head);
	vq_kick(&txq);
	uint64_t start = rdtsc();
	while (!(virtio_status(&dev) & VIRTIO_STATUS_NEEDS_RESET))
		if (rdtsc() - start > 10 * STOP_WAIT_TICKS)
			guest_fail("a writable transmit buffer did not set DEVICE_NEEDS_RESET");
	gprintf("BAD TX STATUS: needs reset\n");
	virtio_reset(&dev);
	for (int i = 0; i < 256; i++)
		rx_buf[i] = 0;
	net_setup();
}

/* A receive buffer the device may not write: it must ask for a reset when a frame comes. */
static void bad_rx(void)
{
	uint64_t start = rdtsc(), last = 0;
	while (!(virtio_status(&dev) & VIRTIO_STATUS_NEEDS_RESET)) {
		if (rdtsc() - start > 20 * STOP_WAIT_TICKS)
			guest_fail("a read-only receive buffer did not set DEVICE_NEEDS_RESET");
		if (!last || rdtsc() - last > STOP_WAIT_TICKS / 4) {
			send_arp(1, 0, host_ip); /* the host's answer is the frame */
			last = rdtsc();
		}
	}
	gprintf("BAD RX STATUS: needs reset\n");
	virtio_reset(&dev);
	for (int i = 0; i < 256; i++)
		rx_buf[i] = 0;
	bad_rx_first = false;
	net_setup();
}

/* Counts UDP frames from the host until n came (the host sends them; rate-limit test). */
static void rx_count(uint32_t n)
{
	uint32_t got = 0, plen, nbufs;
	gprintf("RX READY\n");
	uint64_t start = rdtsc();
	while (got < n) {
		if (rdtsc() - start > 60 * STOP_WAIT_TICKS)
			guest_fail("the host's frames did not all come");
		uint32_t len = receive(STOP_WAIT_TICKS, &nbufs);
		if (len && classify(len, 17, &plen))
			got++;
	}
	gprintf("RX FRAMES: %u\n", got);
}

/* ---------------------------------------------------------------- bench */

/* N frames of `size` bytes as fast as the queue takes them. Over 1514 bytes a frame is one
 * TCP segment for the device to cut (HOST_TSO4, gso_size 1448). The destination MAC is no
 * one's, so the host counts the frames on the tap and drops them. */
static void bench(uint32_t frames, uint32_t size)
{
	static const uint8_t nobody[6] = {0x02, 0, 0, 0, 0, 0x01};
	if (size < 60 || size > 65514)
		guest_fail("vnet.size: 60 to 65514");
	bool tso = size > 1514;
	if (tso && !(dev.features & VIRTIO_BIT(NET_F_HOST_TSO4)))
		guest_fail("vnet.size over 1514 needs HOST_TSO4");
	uint8_t *p = eth(nobody, ETH_IP);
	memset(p, 0, size - 14);
	uint8_t ip[20] = {0x45, 0, (uint8_t)((size - 14) >> 8), (uint8_t)(size - 14), 0, 1, 0x40, 0,
			  64,	6};
	uint32_t s = htonl(guest_ip), d = htonl(host_ip);
	memcpy(ip + 12, &s, 4), memcpy(ip + 16, &d, 4);
	uint16_t c = (uint16_t)~csum_fold(csum_add(0, ip, 20));
	ip[10] = (uint8_t)(c >> 8), ip[11] = (uint8_t)c;
	memcpy(p, ip, 20);
	p[20] = 0x9c, p[21] = 0x40, p[22] = 0x00, p[23] = 0x09; /* 40000 -> discard */
	p[32] = 0x50, p[33] = 0x18;				/* 20-byte header, PSH ACK */
	p[34] = 0xff, p[35] = 0xff;
	if (tso) {
		struct net_hdr *h = (struct net_hdr *)tx;
		h->flags = HDR_F_NEEDS_CSUM;
		h->gso_type = GSO_TCPV4;
		h->hdr_len = 14 + 20 + 20;
		h->gso_size = 1448;
		h->csum_start = 14 + 20;
		h->csum_offset = 16;
	}
	struct vbuf b = {vaddr(tx), HDR_LEN + size};
	uint32_t sent = 0, done = 0, id, len, kicks = 0;
	gprintf("TX START\n");
	uint64_t t0 = rdtsc();
	while (done < frames) {
		bool added = false;
		while (sent < frames) {
			int head = vq_add(&txq, &b, 1, 0, 0);
			if (head < 0)
				break;
			vq_publish(&txq, (uint16_t)head);
			sent++;
			added = true;
		}
		if (added) {
			uint16_t ev = *(volatile uint16_t *)(vaddr(txq.used) + 4u + 8u * txq.size);
			if ((uint16_t)(txq.avail_idx - ev - 1) <
			    (uint16_t)(txq.avail_idx - txq.kicked_idx))
				kicks++;
			vq_kick(&txq);
		}
		uint64_t w = rdtsc();
		while (!vq_get_used(&txq, &id, &len)) {
			if (rdtsc() - w > 10 * STOP_WAIT_TICKS)
				guest_fail("virtio-net: transmit stalled");
			cpu_relax();
		}
		done++;
		while (vq_get_used(&txq, &id, &len))
			done++;
	}
	uint64_t ticks = rdtsc() - t0;
	gprintf("TX END\n");
	gprintf("TX FRAMES: %u\n", frames);
	gprintf("TX BYTES: %llu\n", (unsigned long long)frames * size);
	gprintf("TX TICKS: %llu\n", (unsigned long long)ticks);
	gprintf("TX KICKS: %u\n", kicks);
}

static void run(void)
{
	bad_rx_first = only("badrx");
	net_setup();
	gprintf("MAC: %02x:%02x:%02x:%02x:%02x:%02x\n", mac[0], mac[1], mac[2], mac[3], mac[4],
		mac[5]);
	if (only("features")) {
		print_features();
		return;
	}
	if (only("bench")) {
		bench(arg_num("vnet.frames", 1000), arg_num("vnet.size", 1514));
		return;
	}
	if (only("rxcount")) {
		rx_count(arg_num("vnet.frames", 10));
		return;
	}
	if (only("badtx"))
		bad_tx();
	if (only("badrx"))
		bad_rx();
	resolve_host();
	if (only("arp") || only("badtx") || only("badrx"))
		return;
	ping();
	uint32_t port = arg_num("vnet.udp", 0);
	if (port) {
		udp((uint16_t)port, 100, "UDP REPLY");
		uint32_t big = arg_num("vnet.big", 0);
		if (big)
			udp((uint16_t)port, big, "UDP BIG REPLY");
	}
}

void guest_main(void)
{
	host_ip = arg_ip("vnet.host", 0x0a630001);
	guest_ip = arg_ip("vnet.guest", 0x0a630002);
	run();
	virtio_reset(&dev);
	if (!acpi_table("FACP")) { /* QEMU microvm with acpi=off: leave through isa-debug-exit */
		outb(0x501, 0);
		tsc_delay(STOP_WAIT_TICKS);
	}
}
