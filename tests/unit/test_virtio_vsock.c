/* virtio-vsock without a VM: the --vsock spec, the packet header and its checks, credit
 * arithmetic, and the muxer driven through chains like the device's, against real Unix
 * sockets in a temporary directory. */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vmm/virtio/vsock_mux.h"
#include "vmm/virtio/vsock_pkt.h"
#include "vmm/virtio/vsock_spec.h"

#define GUEST_CID 42

/* ------------------------------------------------------------------ spec */

static void spec_bad(const char *s, const char *want)
{
	struct vsock_spec sp;
	vs_err_t err = NULL;
	cr_assert_eq(vsock_spec_parse(s, &sp, &err), -1, "`%s` was accepted", s);
	cr_assert(strstr(err->msg, want), "`%s`: got `%s`, want `%s`", s, err->msg, want);
	vs_err_free(&err);
}

Test(vsock_spec, parses_cid_and_uds_in_any_order)
{
	struct vsock_spec sp;
	vs_err_t err = NULL;
	cr_assert_eq(vsock_spec_parse("uds=/run/v.sock,cid=4294967294", &sp, &err), 0);
	cr_assert_eq(sp.cid, 4294967294u);
	cr_assert_str_eq(sp.uds, "/run/v.sock");
}

Test(vsock_spec, refuses_reserved_cids_and_bad_options)
{
	spec_bad("cid=0,uds=/x", "not a guest CID");
	spec_bad("cid=2,uds=/x", "not a guest CID");
	spec_bad("cid=4294967295,uds=/x", "not a guest CID");
	spec_bad("cid=-3,uds=/x", "not a number");
	spec_bad("cid=3x,uds=/x", "not a number");
	spec_bad("cid=3,cid=4,uds=/x", "given twice");
	spec_bad("cid=3", "uds: missing");
	spec_bad("uds=/x", "cid: missing");
	spec_bad("cid=3,uds=", "an empty path");
	spec_bad("cid=3,uds=/x,", "stray");
	spec_bad("cid=3,uds=/x,mtu=1", "unknown option");
	char long_path[128] = "cid=3,uds=/";
	memset(long_path + strlen(long_path), 'a', 96);
	spec_bad(long_path, "longer than 96");
}

Test(vsock_spec, json_is_firecrackers_vsock)
{
	struct vsock_spec sp;
	vs_err_t err = NULL;
	json_t *o = json_pack("{s:i, s:s, s:s}", "guest_cid", 3, "uds_path", "/v.sock", "vsock_id",
			      "vsock0");
	cr_assert_eq(vsock_spec_from_json(o, &sp, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(sp.cid, 3);
	json_decref(o);
	o = json_pack("{s:i, s:s, s:i}", "guest_cid", 3, "uds_path", "/v.sock", "extra", 1);
	cr_assert_eq(vsock_spec_from_json(o, &sp, &err), -1);
	vs_err_free(&err);
	json_decref(o);
	o = json_pack("{s:i}", "guest_cid", 1);
	cr_assert_eq(vsock_spec_from_json(o, &sp, &err), -1);
	vs_err_free(&err);
	json_decref(o);
}

/* ------------------------------------------------------------------ header, credit */

static struct vsock_hdr hdr(uint16_t op, uint32_t src_port, uint32_t dst_port, uint32_t len)
{
	return (struct vsock_hdr){.src_cid = GUEST_CID,
				  .dst_cid = VSOCK_HOST_CID,
				  .src_port = src_port,
				  .dst_port = dst_port,
				  .len = len,
				  .type = VSOCK_TYPE_STREAM,
				  .op = op,
				  .buf_alloc = 1 << 20};
}

Test(vsock_pkt, header_round_trips_little_endian)
{
	struct vsock_hdr h = hdr(VSOCK_OP_RW, 0x11223344, 0x55667788, 99), back;
	h.flags = 3;
	h.fwd_cnt = 0xdeadbeef;
	uint8_t raw[VSOCK_HDR_LEN];
	vsock_hdr_encode(&h, raw);
	cr_assert_eq(raw[0], GUEST_CID);
	cr_assert_eq(raw[16], 0x44);
	cr_assert_eq(raw[30], VSOCK_OP_RW);
	vsock_hdr_decode(raw, &back);
	cr_assert_eq(memcmp(&h, &back, sizeof(h)), 0);
}

Test(vsock_pkt, checks_what_the_guest_controls)
{
	struct vsock_hdr h = hdr(VSOCK_OP_RW, 1, 2, 100);
	cr_assert_null(vsock_hdr_invalid(&h, GUEST_CID, 100));
	cr_assert_not_null(vsock_hdr_invalid(&h, GUEST_CID, 99)); /* len past the buffers */
	cr_assert_not_null(vsock_hdr_invalid(&h, 43, 100));	  /* not the guest's CID */
	h.len = VSOCK_MAX_PAYLOAD + 1;
	cr_assert_not_null(vsock_hdr_invalid(&h, GUEST_CID, 1 << 20));
	h = hdr(VSOCK_OP_CREDIT_REQUEST + 1, 1, 2, 0);
	cr_assert_not_null(vsock_hdr_invalid(&h, GUEST_CID, 0));
	h = hdr(VSOCK_OP_INVALID, 1, 2, 0);
	cr_assert_not_null(vsock_hdr_invalid(&h, GUEST_CID, 0));
	h = hdr(VSOCK_OP_REQUEST, 1, 2, 4); /* a control op with a payload */
	cr_assert_not_null(vsock_hdr_invalid(&h, GUEST_CID, 4));
	h = hdr(VSOCK_OP_SHUTDOWN, 1, 2, 0);
	h.flags = 4;
	cr_assert_not_null(vsock_hdr_invalid(&h, GUEST_CID, 0));
	h.flags = 3;
	cr_assert_null(vsock_hdr_invalid(&h, GUEST_CID, 0));
}

Test(vsock_pkt, credit_with_wrapping_counters)
{
	cr_assert_eq(vsock_peer_free(1000, 0, 0), 1000);
	cr_assert_eq(vsock_peer_free(1000, 100, 600), 500);
	cr_assert_eq(vsock_peer_free(1000, 0, 1000), 0);
	cr_assert_eq(vsock_peer_free(100, 0, 500), 0); /* the peer shrank its buffer */
	cr_assert_eq(vsock_peer_free(1000, UINT32_MAX - 99, 100), 800); /* wrapped */
	cr_assert(vsock_fwd_cnt_valid(0, 0, 0));
	cr_assert(vsock_fwd_cnt_valid(10, 50, 50));
	cr_assert_not(vsock_fwd_cnt_valid(10, 51, 50)); /* consumed more than it was sent */
	cr_assert_not(vsock_fwd_cnt_valid(10, 9, 50));	/* went backwards */
	cr_assert(vsock_fwd_cnt_valid(UINT32_MAX - 5, 3, 10));
	cr_assert_not(vsock_fwd_cnt_valid(UINT32_MAX - 5, 11, 10));
}

/* ------------------------------------------------------------------ the muxer */

static char dir[64], uds[96];
static struct vsock_mux *mux;

static void mux_setup(void)
{
	strcpy(dir, "/tmp/vsock-unit-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(uds, sizeof(uds), "%s/v.sock", dir);
	vs_err_t err = NULL;
	mux = vsock_mux_new(GUEST_CID, uds, &err);
	cr_assert_not_null(mux, "%s", err ? err->msg : "");
}

static void mux_teardown(void)
{
	vsock_mux_free(mux);
	char p[128];
	snprintf(p, sizeof(p), "%s/v.sock_7000", dir);
	unlink(p);
	rmdir(dir);
}

/* One tx packet as the guest would post it: header and payload in two descriptors. */
static int tx(struct vsock_hdr h, const void *payload, const char **why)
{
	static uint8_t raw[VSOCK_HDR_LEN];
	static struct virtq_chain c;
	vsock_hdr_encode(&h, raw);
	c = (struct virtq_chain){.n_out = 1, .out_len = VSOCK_HDR_LEN};
	c.out[0] = (struct virtq_seg){raw, VSOCK_HDR_LEN};
	if (payload && h.len) {
		c.out[1] = (struct virtq_seg){(void *)payload, h.len};
		c.n_out = 2;
		c.out_len += h.len;
	}
	const char *w = NULL;
	int r = vsock_mux_tx(mux, &c, why ? why : &w);
	return r;
}

/* The next packet for the guest (a 4 KiB buffer, as Linux 6.1 posts), or op 0. */
static struct vsock_hdr rx(uint8_t *data)
{
	static uint8_t hb[VSOCK_HDR_LEN], buf[4096];
	struct virtq_chain c = {.n_in = 2, .in_len = VSOCK_HDR_LEN + sizeof(buf)};
	c.in[0] = (struct virtq_seg){hb, VSOCK_HDR_LEN};
	c.in[1] = (struct virtq_seg){buf, sizeof(buf)};
	struct vsock_hdr h = {0};
	for (int tries = 0; tries < 100; tries++) {
		vsock_mux_poll(mux);
		int64_t n = vsock_mux_rx(mux, &c);
		cr_assert_geq(n, 0);
		if (n > 0) {
			vsock_hdr_decode(hb, &h);
			cr_assert_eq(n, VSOCK_HDR_LEN + h.len);
			if (data)
				memcpy(data, buf, h.len);
			return h;
		}
		poll(NULL, 0, 10);
	}
	return h;
}

static int host_listen(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert(bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(s, 4) == 0);
	return s;
}

static int host_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert_eq(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s", strerror(errno));
	return s;
}

TestSuite(vsock_mux, .init = mux_setup, .fini = mux_teardown);

Test(vsock_mux, guest_connect_without_a_host_listener_is_reset)
{
	cr_assert_eq(tx(hdr(VSOCK_OP_REQUEST, 1234, 7000, 0), NULL, NULL), 0);
	struct vsock_hdr h = rx(NULL);
	cr_assert_eq(h.op, VSOCK_OP_RST);
	cr_assert_eq(h.src_cid, VSOCK_HOST_CID);
	cr_assert_eq(h.dst_cid, GUEST_CID);
	cr_assert_eq(h.src_port, 7000);
	cr_assert_eq(h.dst_port, 1234);
}

Test(vsock_mux, guest_connection_splices_both_ways_within_credit)
{
	char path[128];
	snprintf(path, sizeof(path), "%s_7000", uds);
	int l = host_listen(path);
	struct vsock_hdr req = hdr(VSOCK_OP_REQUEST, 1234, 7000, 0);
	req.buf_alloc = 10; /* the guest takes 10 bytes at a time */
	tx(req, NULL, NULL);
	cr_assert_eq(rx(NULL).op, VSOCK_OP_RESPONSE);
	int s = accept(l, NULL, NULL);
	cr_assert_geq(s, 0);

	struct vsock_hdr rw = hdr(VSOCK_OP_RW, 1234, 7000, 5);
	rw.buf_alloc = 10;
	tx(rw, "hello", NULL);
	char got[16] = {0};
	cr_assert_eq(read(s, got, sizeof(got)), 5);
	cr_assert_str_eq(got, "hello");

	cr_assert_eq(write(s, "0123456789abcdef", 16), 16);
	uint8_t data[4096];
	struct vsock_hdr h = rx(data);
	cr_assert_eq(h.op, VSOCK_OP_RW);
	cr_assert_eq(h.len, 10, "sent %u bytes past the guest's credit of 10", h.len);
	cr_assert_eq(memcmp(data, "0123456789", 10), 0);
	/* out of credit: the muxer asks for more instead of sending */
	cr_assert_eq(rx(NULL).op, VSOCK_OP_CREDIT_REQUEST);
	struct vsock_hdr upd = hdr(VSOCK_OP_CREDIT_UPDATE, 1234, 7000, 0);
	upd.buf_alloc = 10;
	upd.fwd_cnt = 10;
	tx(upd, NULL, NULL);
	h = rx(data);
	cr_assert_eq(h.op, VSOCK_OP_RW);
	cr_assert_eq(h.len, 6);
	cr_assert_eq(memcmp(data, "abcdef", 6), 0);

	/* the guest closes: the host sees EOF once both directions are done */
	struct vsock_hdr sd = hdr(VSOCK_OP_SHUTDOWN, 1234, 7000, 0);
	sd.buf_alloc = 10;
	sd.fwd_cnt = 16;
	sd.flags = VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND;
	tx(sd, NULL, NULL);
	cr_assert_eq(rx(NULL).op, VSOCK_OP_RST);
	cr_assert_eq(read(s, got, sizeof(got)), 0);
	close(s);
	close(l);
}

Test(vsock_mux, a_guest_lying_about_credit_is_reset)
{
	char path[128];
	snprintf(path, sizeof(path), "%s_7000", uds);
	int l = host_listen(path);
	tx(hdr(VSOCK_OP_REQUEST, 1234, 7000, 0), NULL, NULL);
	cr_assert_eq(rx(NULL).op, VSOCK_OP_RESPONSE);
	/* it claims to have consumed bytes it was never sent */
	struct vsock_hdr upd = hdr(VSOCK_OP_CREDIT_UPDATE, 1234, 7000, 0);
	upd.fwd_cnt = 1;
	tx(upd, NULL, NULL);
	cr_assert_eq(rx(NULL).op, VSOCK_OP_RST);
	struct vsock_mux_stats st;
	vsock_mux_stats(mux, &st);
	cr_assert_eq(st.lies, 1);
	cr_assert_eq(st.conns, 0);
	close(l);
}

Test(vsock_mux, a_guest_sending_past_its_credit_is_reset)
{
	char path[128];
	snprintf(path, sizeof(path), "%s_7000", uds);
	int l = host_listen(path);
	tx(hdr(VSOCK_OP_REQUEST, 1234, 7000, 0), NULL, NULL);
	cr_assert_eq(rx(NULL).op, VSOCK_OP_RESPONSE);
	/* the host never reads: its socket fills, then our buffer, then the guest must stop */
	static uint8_t chunk[VSOCK_MAX_PAYLOAD];
	bool reset = false;
	for (int i = 0; i < 4096 && !reset; i++) {
		tx(hdr(VSOCK_OP_RW, 1234, 7000, sizeof(chunk)), chunk, NULL);
		struct vsock_mux_stats st;
		vsock_mux_stats(mux, &st);
		reset = st.lies == 1;
	}
	cr_assert(reset, "a guest past its credit was never stopped");
	struct vsock_hdr h;
	do
		h = rx(NULL);
	while (h.op == VSOCK_OP_CREDIT_UPDATE);
	cr_assert_eq(h.op, VSOCK_OP_RST);
	close(l);
}

Test(vsock_mux, host_connect_waits_for_the_guest_to_accept)
{
	int s = host_connect(uds);
	cr_assert_eq(write(s, "CONNECT 52\nhi", 13), 13);
	struct vsock_hdr h = rx(NULL);
	cr_assert_eq(h.op, VSOCK_OP_REQUEST);
	cr_assert_eq(h.dst_port, 52);
	cr_assert_geq(h.src_port, 1u << 30);
	struct vsock_hdr resp = hdr(VSOCK_OP_RESPONSE, 52, h.src_port, 0);
	tx(resp, NULL, NULL);
	char line[32] = {0};
	ssize_t n = read(s, line, sizeof(line) - 1);
	cr_assert_gt(n, 0);
	char want[32];
	snprintf(want, sizeof(want), "OK %u\n", h.src_port);
	cr_assert_str_eq(line, want);
	/* what came after the CONNECT line is the stream's */
	uint8_t data[4096];
	h = rx(data);
	cr_assert_eq(h.op, VSOCK_OP_RW);
	cr_assert_eq(h.len, 2);
	cr_assert_eq(memcmp(data, "hi", 2), 0);
	/* the host closes: the guest is told it will get no more */
	close(s);
	h = rx(NULL);
	cr_assert_eq(h.op, VSOCK_OP_SHUTDOWN);
	cr_assert_eq(h.flags, VSOCK_SHUTDOWN_SEND);
}

Test(vsock_mux, host_connect_refused_by_the_guest_closes_the_socket)
{
	int s = host_connect(uds);
	cr_assert_eq(write(s, "CONNECT 52\n", 11), 11);
	struct vsock_hdr h = rx(NULL);
	cr_assert_eq(h.op, VSOCK_OP_REQUEST);
	tx(hdr(VSOCK_OP_RST, 52, h.src_port, 0), NULL, NULL);
	char c;
	cr_assert_eq(read(s, &c, 1), 0);
	close(s);
}

Test(vsock_mux, a_bad_connect_line_closes_the_socket)
{
	int s = host_connect(uds);
	cr_assert_eq(write(s, "HELLO 52\n", 9), 9);
	rx(NULL);
	char c;
	cr_assert_eq(read(s, &c, 1), 0);
	close(s);
}

Test(vsock_mux, malformed_headers_need_a_reset)
{
	const char *why = NULL;
	struct vsock_hdr h = hdr(VSOCK_OP_RW, 1, 2, 100);
	cr_assert_eq(tx(h, NULL, &why), -1); /* len past the chain */
	cr_assert_not_null(why);
	h = hdr(VSOCK_OP_REQUEST, 1, 2, 0);
	h.src_cid = 7;
	cr_assert_eq(tx(h, NULL, &why), -1);
}

Test(vsock_mux, a_host_that_went_away_is_an_rst_not_a_sigpipe)
{
	char path[128];
	snprintf(path, sizeof(path), "%s_7000", uds);
	int l = host_listen(path);
	tx(hdr(VSOCK_OP_REQUEST, 1234, 7000, 0), NULL, NULL);
	cr_assert_eq(rx(NULL).op, VSOCK_OP_RESPONSE);
	close(accept(l, NULL, NULL));
	close(l);
	/* the VMM does not ignore SIGPIPE: a write to the dead socket must not raise it */
	tx(hdr(VSOCK_OP_RW, 1234, 7000, 5), "hello", NULL);
	struct vsock_hdr h;
	do
		h = rx(NULL);
	while (h.op == VSOCK_OP_SHUTDOWN);
	cr_assert_eq(h.op, VSOCK_OP_RST);
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Polls the muxer until every socket of s[0..n) reads EOF; returns how long it took. Each
 * RST the muxer sends the guest meanwhile is counted into *rsts (ports checked). */
static double wait_eof(const int *s, int n, const uint32_t *host_ports, unsigned *rsts)
{
	double t0 = mono_s();
	int open = n;
	bool eof[128] = {0};
	cr_assert_leq(n, 128);
	while (open && mono_s() - t0 < 10) {
		struct pollfd p = {.fd = vsock_mux_epfd(mux), .events = POLLIN};
		poll(&p, 1, 100);
		vsock_mux_poll(mux);
		struct vsock_hdr h;
		while (vsock_mux_rx_pending(mux) && (h = rx(NULL)).op == VSOCK_OP_RST) {
			bool ours = false;
			for (int i = 0; i < n; i++)
				ours |= h.src_port == host_ports[i] && h.dst_port == 52;
			cr_assert(ours, "an RST for %u:%u", h.src_port, h.dst_port);
			(*rsts)++;
		}
		for (int i = 0; i < n; i++) {
			char c;
			if (!eof[i] && recv(s[i], &c, 1, MSG_DONTWAIT) == 0) {
				eof[i] = true;
				open--;
			}
		}
	}
	cr_assert_eq(open, 0, "%d host sockets still open after 10 s", open);
	return mono_s() - t0;
}

/* Firecracker's 2 s: a REQUEST the guest neither accepts nor refuses closes the host's
 * socket, and the guest gets an RST for the pair so a late RESPONSE joins nothing. */
Test(vsock_mux, an_unanswered_host_connect_times_out)
{
	int s = host_connect(uds);
	cr_assert_eq(write(s, "CONNECT 52\n", 11), 11);
	struct vsock_hdr h = rx(NULL);
	cr_assert_eq(h.op, VSOCK_OP_REQUEST);
	uint32_t port = h.src_port;
	unsigned rsts = 0;
	double took = wait_eof(&s, 1, &port, &rsts);
	cr_assert_gt(took, 1.0, "closed after %.2f s, before the guest had its 2 s", took);
	cr_assert_lt(took, 10.0);
	cr_assert_eq(rsts, 1, "the guest was told once");
	struct vsock_mux_stats st;
	vsock_mux_stats(mux, &st);
	cr_assert_eq(st.conns, 0);
	/* a RESPONSE after the deadline is refused, not joined to anything */
	tx(hdr(VSOCK_OP_RESPONSE, 52, port, 0), NULL, NULL);
	h = rx(NULL);
	cr_assert_eq(h.op, VSOCK_OP_RST);
	cr_assert_eq(h.src_port, port);
	vsock_mux_stats(mux, &st);
	cr_assert_eq(st.conns, 0);
	close(s);
}

/* An answered REQUEST is not timed out later. */
Test(vsock_mux, an_accepted_host_connect_outlives_the_timeout)
{
	int s = host_connect(uds);
	cr_assert_eq(write(s, "CONNECT 52\n", 11), 11);
	struct vsock_hdr h = rx(NULL);
	cr_assert_eq(h.op, VSOCK_OP_REQUEST);
	tx(hdr(VSOCK_OP_RESPONSE, 52, h.src_port, 0), NULL, NULL);
	char line[32] = {0};
	cr_assert_gt(read(s, line, sizeof(line) - 1), 0);
	double t0 = mono_s();
	while (mono_s() - t0 < 3) {
		struct pollfd p = {.fd = vsock_mux_epfd(mux), .events = POLLIN};
		poll(&p, 1, 100);
		vsock_mux_poll(mux);
	}
	cr_assert_eq(rx(NULL).op, 0, "nothing for the guest");
	char c;
	cr_assert_eq(recv(s, &c, 1, MSG_DONTWAIT), -1, "still open");
	cr_assert_eq(errno, EAGAIN);
	close(s);
}

/* 100 silent REQUESTs at once: all time out together, and the table is empty after. */
Test(vsock_mux, a_hundred_unanswered_connects_all_time_out)
{
	enum { N = 100 };
	int s[N];
	uint32_t ports[N];
	for (int i = 0; i < N; i++) {
		s[i] = host_connect(uds);
		cr_assert_eq(write(s[i], "CONNECT 52\n", 11), 11);
		struct vsock_hdr h = rx(NULL);
		cr_assert_eq(h.op, VSOCK_OP_REQUEST);
		ports[i] = h.src_port;
	}
	unsigned rsts = 0;
	double took = wait_eof(s, N, ports, &rsts);
	cr_assert_gt(took, 1.0);
	cr_assert_eq(rsts, N);
	struct vsock_mux_stats st;
	vsock_mux_stats(mux, &st);
	cr_assert_eq(st.conns, 0);
	cr_assert_eq(st.drops, 0);
	for (int i = 0; i < N; i++)
		close(s[i]);
}

/* The timer and the host's bytes on the connection it expires, ready in one epoll call:
 * the bytes go nowhere and the connection is gone. (Here epoll lists the connection before
 * the timer, so this does not show the use-after-free that handling the timer first in
 * the batch would be; vsock_mux_poll defers it for that reason.) */
Test(vsock_mux, host_bytes_on_an_expiring_request_in_the_same_poll)
{
	int s = host_connect(uds);
	cr_assert_eq(write(s, "CONNECT 52\n", 11), 11);
	struct vsock_hdr h = rx(NULL);
	cr_assert_eq(h.op, VSOCK_OP_REQUEST);
	usleep(2200 * 1000); /* past the deadline, not polled: the timer is ready first */
	cr_assert_eq(write(s, "late", 4), 4);
	vsock_mux_poll(mux);
	struct vsock_mux_stats st;
	vsock_mux_stats(mux, &st);
	cr_assert_eq(st.conns, 0);
	cr_assert_eq(rx(NULL).op, VSOCK_OP_RST);
	/* closed with "late" unread: a Unix socket's peer sees ECONNRESET rather than EOF */
	char c;
	cr_assert_leq(read(s, &c, 1), 0);
	close(s);
}
