/* virtio-vsock's guest input without a VM: the tx packet parser and the muxer behind it,
 * fed hostile packets interleaved with host sockets that connect, write and close, and rx
 * buffers of hostile shapes. Checks, besides crashes, leaks and UB: a packet for the guest
 * never exceeds the buffer it was given (guard bytes after each segment stay intact) and
 * is at least a header; the --vsock spec parser keeps its promises.
 *
 * Input: a first byte 0 makes the rest a --vsock spec. Otherwise a list of steps, each a
 * byte (step % 5) and its operands:
 *   0 tx: a 44-byte header (src_cid, dst_cid and type fixed to the expected ones when the
 *     step byte's bit 4 is set), then 3 bytes of segment sizes for the payload;
 *   1 rx: 2 bytes of segment sizes (header part, data part), then poll and fill;
 *   2 a host connects to uds and writes `CONNECT <2 bytes>\n`;
 *   3 a host writes 1-64 bytes on one of its sockets; 4 a host closes one.
 * Every input starts from a reset muxer with no host sockets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/virtio/vsock_mux.h"
#include "vmm/virtio/vsock_pkt.h"
#include "vmm/virtio/vsock_spec.h"

#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CID 3
#define HOSTS 8
#define GUARD 0x5a

static struct vsock_mux *mux;
static char uds[96], peer[112];
static int peer_listen = -1;

static int unix_fd(const char *path, bool listening)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	int r = listening ? bind(s, (struct sockaddr *)&sa, sizeof(sa)) || listen(s, 64)
			  : connect(s, (struct sockaddr *)&sa, sizeof(sa));
	if (r) {
		close(s);
		return -1;
	}
	return s;
}

static void setup(void)
{
	static char dir[] = "/tmp/fuzz-vsock-XXXXXX";
	if (!mkdtemp(dir))
		abort();
	snprintf(uds, sizeof(uds), "%s/v", dir);
	snprintf(peer, sizeof(peer), "%s_7", uds);
	vs_err_t err = NULL;
	mux = vsock_mux_new(CID, uds, &err);
	if (!mux)
		abort();
	/* the guest's connections to host port 7 find someone (who never reads) */
	peer_listen = unix_fd(peer, true);
}

static void spec(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstring(data, size);
	if (!s)
		return;
	struct vsock_spec sp;
	vs_err_t err = NULL;
	if (vsock_spec_parse(s, &sp, &err) == 0) {
		size_t n = strnlen(sp.uds, sizeof(sp.uds));
		if (sp.cid < 3 || sp.cid == UINT32_MAX || n == 0 || n > VSOCK_UDS_MAX)
			__builtin_trap();
	} else if (!err || !err->msg || strchr(err->msg, '\n')) {
		__builtin_trap();
	}
	vs_err_free(&err);
	free(s);
}

static void step_tx(uint8_t how, const uint8_t **p, size_t *left)
{
	static uint8_t raw[VSOCK_HDR_LEN + 3 * 256];
	static struct virtq_chain c;
	if (*left < VSOCK_HDR_LEN + 3)
		return;
	struct vsock_hdr h;
	vsock_hdr_decode(*p, &h);
	if (how & 0x10) {
		h.src_cid = CID;
		h.dst_cid = VSOCK_HOST_CID;
		h.type = VSOCK_TYPE_STREAM;
		h.op = (uint16_t)(h.op % 8);
		h.dst_port %= 16; /* host port 7 has a listener */
		h.src_port %= 16;
	}
	const uint8_t *sizes = *p + VSOCK_HDR_LEN;
	*p += VSOCK_HDR_LEN + 3;
	*left -= VSOCK_HDR_LEN + 3;
	vsock_hdr_encode(&h, raw);
	c = (struct virtq_chain){.n_out = 1, .out_len = VSOCK_HDR_LEN};
	c.out[0] = (struct virtq_seg){raw, VSOCK_HDR_LEN};
	uint8_t *pay = raw + VSOCK_HDR_LEN;
	for (unsigned i = 0; i < 3; i++) {
		c.out[c.n_out++] = (struct virtq_seg){pay, sizes[i]};
		memset(pay, (int)i, sizes[i]);
		pay += sizes[i];
		c.out_len += sizes[i];
	}
	const char *why = NULL;
	if (vsock_mux_tx(mux, &c, &why) < 0 && !why)
		__builtin_trap();
}

static void step_rx(const uint8_t **p, size_t *left)
{
	static uint8_t mem[2][256 + 1];
	if (*left < 2)
		return;
	uint32_t len[2] = {(*p)[0], (*p)[1]};
	*p += 2;
	*left -= 2;
	memset(mem, GUARD, sizeof(mem));
	struct virtq_chain c = {.n_in = 2, .in_len = len[0] + len[1]};
	c.in[0] = (struct virtq_seg){mem[0], len[0]};
	c.in[1] = (struct virtq_seg){mem[1], len[1]};
	vsock_mux_poll(mux);
	int64_t n = vsock_mux_rx(mux, &c);
	if (n < 0 ? c.in_len >= VSOCK_HDR_LEN : n > (int64_t)c.in_len || (n && n < VSOCK_HDR_LEN))
		__builtin_trap();
	if (mem[0][len[0]] != GUARD || mem[1][len[1]] != GUARD)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!mux)
		setup();
	if (size < 1)
		return 0;
	if (data[0] == 0) {
		spec(data + 1, size - 1);
		return 0;
	}
	int hosts[HOSTS];
	unsigned nhosts = 0;
	const uint8_t *p = data + 1;
	size_t left = size - 1;
	for (unsigned steps = 0; left && steps < 256; steps++) {
		uint8_t how = *p++;
		left--;
		switch (how % 5) {
		case 0:
			step_tx(how, &p, &left);
			break;
		case 1:
			step_rx(&p, &left);
			break;
		case 2:
			if (left >= 2 && nhosts < HOSTS) {
				int s = unix_fd(uds, false);
				if (s >= 0) {
					char line[32];
					int n = snprintf(line, sizeof(line), "CONNECT %u\n",
							 p[0] | p[1] << 8);
					if (write(s, line, (size_t)n) < 0) {
					}
					hosts[nhosts++] = s;
				}
				p += 2;
				left -= 2;
			}
			break;
		case 3:
			if (left >= 1 && nhosts) {
				size_t n = 1 + (*p & 63);
				int s = hosts[(*p >> 6) % nhosts];
				p++;
				left--;
				if (n > left)
					n = left;
				if (write(s, p, n) < 0) {
				}
				p += n;
				left -= n;
			}
			break;
		case 4:
			if (nhosts) {
				close(hosts[--nhosts]);
			}
			break;
		}
	}
	vsock_mux_reset(mux);
	for (unsigned i = 0; i < nhosts; i++)
		close(hosts[i]);
	/* the host side of the guest's connections: gone with the input */
	for (int s; (s = accept(peer_listen, NULL, NULL)) >= 0;)
		close(s);
	/* half-open host sockets the muxer accepted but had not read are closed by reset;
	 * ones still in its listener's backlog are taken now so none carries over */
	vsock_mux_poll(mux);
	vsock_mux_reset(mux);
	return 0;
}
