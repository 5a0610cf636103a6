/* virtio-vsock's muxer: guest stream connections <-> host Unix sockets (vsock_mux.h).
 *
 * Host sockets sit in the muxer's own epoll set, edge-triggered: an event only sets the
 * connection's readable/writable flags, and the flags are cleared on EAGAIN. So a socket
 * whose bytes the guest has no credit or buffers for is not polled again and again; the
 * guest's next credit update or rx buffers resume it.
 *
 * What goes to the guest waits in two places: control packets (REQUEST, RESPONSE, RST,
 * SHUTDOWN, credit) in one bounded ring, sent first, and connections with bytes to read
 * in a round-robin list. A connection's bytes are read from its socket straight into the
 * guest's buffer, never more than the guest's credit allows, so nothing host-to-guest is
 * buffered here at all. */
#include "vmm/virtio/vsock_mux.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/log.h"
#include "base/usock.h"
#include "vmm/virtio/vsock_pkt.h"
#include "vmm/virtio/vsock_spec.h"

#define HASH_SIZE 256
#define CTL_RING (4 * VSOCK_MAX_CONNS)
/* Host-initiated connections get host ports from here up (Firecracker's range too):
 * far above what a guest listens on or picks for its own. */
#define HOST_PORT_FIRST (1u << 30)
#define CONNECT_LINE_MAX 32 /* "CONNECT 4294967295\n" with room to spare */
#define LIES_LOGGED 8
/* Firecracker's: a guest that neither accepts nor refuses a host connection by then
 * never will, and the host program should not hang on it. */
#define CONNECT_TIMEOUT_NS (2000ull * 1000000ull)

enum conn_state {
	CONN_HANDSHAKE, /* a host socket accepted on uds: reading its CONNECT line */
	CONN_REQUESTED, /* REQUEST sent to the guest, waiting for RESPONSE or RST */
	CONN_ESTABLISHED,
};

struct conn {
	int fd;
	enum conn_state state;
	uint32_t host_port, guest_port; /* the key (not in HANDSHAKE) */
	struct conn *hnext;		/* hash bucket */
	struct conn *prev, *next;	/* every connection */
	struct conn *rx_next;		/* waiting to send bytes to the guest */
	bool rx_queued, hashed;
	bool readable, writable; /* no EAGAIN since the last edge */
	bool host_eof;		 /* the host sent all it will (SHUTDOWN told the guest) */
	bool peer_shut_send, peer_shut_rcv, shut_wr;
	bool credit_update_queued, credit_request_queued;
	/* host -> guest: bytes sent, and the guest's buffer as it last told us */
	uint32_t rx_cnt, peer_buf_alloc, peer_fwd_cnt;
	/* guest -> host: bytes written to the socket, and that count as the guest last saw it */
	uint32_t fwd_cnt, last_fwd_sent;
	/* guest -> host bytes the socket did not take yet: a ring of VSOCK_CONN_BUF, only
	 * while non-empty */
	uint8_t *buf;
	uint32_t buf_head, buf_len;
	char line[CONNECT_LINE_MAX];
	unsigned line_len;
	uint64_t deadline_ns; /* CONN_REQUESTED: reset if the guest is silent until then */
};

struct ctl {
	uint32_t host_port, guest_port;
	uint16_t op;
	uint32_t flags;
};

struct vsock_mux {
	uint64_t cid;
	int epfd, listen_fd;
	/* one timer for every REQUEST the guest has not answered, in the epoll set: armed
	 * for the earliest deadline (0: disarmed) */
	int timer_fd;
	uint64_t timer_ns;
	char uds[VSOCK_UDS_MAX + 1];
	struct conn *conns;
	unsigned nconns;
	struct conn *hash[HASH_SIZE];
	struct conn *rx_head, *rx_tail;
	struct ctl ctl[CTL_RING];
	unsigned ctl_head, ctl_len;
	uint32_t next_port;
	uint64_t lies, drops;
};

static unsigned hash_of(uint32_t host_port, uint32_t guest_port)
{
	return (host_port * 2654435761u ^ guest_port * 40503u) % HASH_SIZE;
}

static struct conn *conn_find(const struct vsock_mux *m, uint32_t host_port, uint32_t guest_port)
{
	for (struct conn *c = m->hash[hash_of(host_port, guest_port)]; c; c = c->hnext)
		if (c->host_port == host_port && c->guest_port == guest_port)
			return c;
	return NULL;
}

static void conn_hash_add(struct vsock_mux *m, struct conn *c)
{
	struct conn **b = &m->hash[hash_of(c->host_port, c->guest_port)];
	c->hnext = *b;
	*b = c;
	c->hashed = true;
}

static void conn_kill(struct vsock_mux *m, struct conn *c)
{
	if (c->hashed) {
		struct conn **p = &m->hash[hash_of(c->host_port, c->guest_port)];
		while (*p != c)
			p = &(*p)->hnext;
		*p = c->hnext;
	}
	if (c->rx_queued) {
		struct conn **p = &m->rx_head, *before = NULL;
		while (*p != c) {
			before = *p;
			p = &(*p)->rx_next;
		}
		*p = c->rx_next;
		if (m->rx_tail == c)
			m->rx_tail = before;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		m->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	m->nconns--;
	close(c->fd); /* leaves the epoll set with it */
	free(c->buf);
	free(c);
}

/* A connection of fd (the muxer owns fd from here, also on failure). */
static struct conn *conn_new(struct vsock_mux *m, int fd, enum conn_state state)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return NULL;
	}
	c->fd = fd;
	c->state = state;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
				 .data.ptr = c};
	if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		vs_warn("vsock: epoll: %s", strerror(errno));
		close(fd);
		free(c);
		return NULL;
	}
	c->next = m->conns;
	if (m->conns)
		m->conns->prev = c;
	m->conns = c;
	m->nconns++;
	return c;
}

static bool ctl_push(struct vsock_mux *m, uint32_t host_port, uint32_t guest_port, uint16_t op,
		     uint32_t flags)
{
	if (m->ctl_len == CTL_RING) {
		m->drops++;
		return false;
	}
	m->ctl[(m->ctl_head + m->ctl_len++) % CTL_RING] =
	    (struct ctl){host_port, guest_port, op, flags};
	return true;
}

/* Tells the guest the connection is gone and forgets it. */
static void conn_reset(struct vsock_mux *m, struct conn *c)
{
	if (c->state != CONN_HANDSHAKE)
		ctl_push(m, c->host_port, c->guest_port, VSOCK_OP_RST, 0);
	conn_kill(m, c);
}

static bool conn_wants_rx(const struct conn *c)
{
	return c->state == CONN_ESTABLISHED && c->readable && !c->host_eof && !c->peer_shut_rcv;
}

/* Queues c to send the guest what its socket has, if the guest can take it; asks the guest
 * for credit (once) when that is all that stops it. */
static void rx_sched(struct vsock_mux *m, struct conn *c)
{
	if (c->rx_queued || !conn_wants_rx(c))
		return;
	if (vsock_peer_free(c->peer_buf_alloc, c->peer_fwd_cnt, c->rx_cnt) == 0) {
		if (!c->credit_request_queued)
			c->credit_request_queued =
			    ctl_push(m, c->host_port, c->guest_port, VSOCK_OP_CREDIT_REQUEST, 0);
		return;
	}
	c->rx_queued = true;
	c->rx_next = NULL;
	if (m->rx_tail)
		m->rx_tail->rx_next = c;
	else
		m->rx_head = c;
	m->rx_tail = c;
}

/* The guest learns of freed buffer space from every packet's fwd_cnt; when none goes its
 * way, an update once a quarter of the buffer was forwarded keeps it sending. */
static void credit_check(struct vsock_mux *m, struct conn *c)
{
	if (!c->credit_update_queued && c->fwd_cnt - c->last_fwd_sent >= VSOCK_CONN_BUF / 4)
		c->credit_update_queued =
		    ctl_push(m, c->host_port, c->guest_port, VSOCK_OP_CREDIT_UPDATE, 0);
}

/* After the guest's bytes were all forwarded: carry out its shutdown. false: c is gone. */
static bool shutdown_check(struct vsock_mux *m, struct conn *c)
{
	if (c->buf_len || !c->peer_shut_send)
		return true;
	if (c->peer_shut_rcv || c->host_eof) {
		/* both directions are done: the RST ends it for the guest (Linux waits for it) */
		conn_reset(m, c);
		return false;
	}
	if (!c->shut_wr) {
		shutdown(c->fd, SHUT_WR);
		c->shut_wr = true;
	}
	return true;
}

/* writev without SIGPIPE: a host program that went away is the connection's end, not
 * the VMM's (nothing in the VMM ignores SIGPIPE). */
static ssize_t send_iov(int fd, struct iovec *iov, int n)
{
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
	return sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Writes buffered guest bytes to the socket. false: c is gone (the socket failed). */
static bool conn_flush(struct vsock_mux *m, struct conn *c)
{
	while (c->buf_len && c->writable) {
		uint32_t first = VSOCK_CONN_BUF - c->buf_head;
		if (first > c->buf_len)
			first = c->buf_len;
		struct iovec iov[2] = {{c->buf + c->buf_head, first}, {c->buf, c->buf_len - first}};
		ssize_t n = send_iov(c->fd, iov, c->buf_len > first ? 2 : 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				c->writable = false;
				break;
			}
			conn_reset(m, c);
			return false;
		}
		c->buf_head = (uint32_t)((c->buf_head + (uint64_t)n) % VSOCK_CONN_BUF);
		c->buf_len -= (uint32_t)n;
		c->fwd_cnt += (uint32_t)n;
	}
	if (!c->buf_len) {
		free(c->buf);
		c->buf = NULL;
		c->buf_head = 0;
	}
	credit_check(m, c);
	return shutdown_check(m, c);
}

/* Appends the guest's bytes [off, off+len) of chain to c's ring. */
static bool conn_buffer(struct conn *c, const struct virtq_chain *chain, uint64_t off, uint32_t len)
{
	if (!len)
		return true;
	if (!c->buf && !(c->buf = malloc(VSOCK_CONN_BUF)))
		return false;
	uint32_t tail = (c->buf_head + c->buf_len) % VSOCK_CONN_BUF;
	uint32_t first = VSOCK_CONN_BUF - tail < len ? VSOCK_CONN_BUF - tail : len;
	virtq_chain_read(chain, off, c->buf + tail, first);
	virtq_chain_read(chain, off + first, c->buf, len - first);
	c->buf_len += len;
	return true;
}

/* iov over [off, off+len) of the segments; returns how many entries. */
static int segs_iov(const struct virtq_seg *segs, unsigned n, uint64_t off, uint64_t len,
		    struct iovec *iov)
{
	int k = 0;
	for (unsigned i = 0; i < n && len; i++) {
		if (off >= segs[i].len) {
			off -= segs[i].len;
			continue;
		}
		uint64_t take = segs[i].len - off;
		if (take > len)
			take = len;
		iov[k++] = (struct iovec){(uint8_t *)segs[i].host + off, take};
		len -= take;
		off = 0;
	}
	return k;
}

/* ------------------------------------------------------------------ host side */

static bool parse_connect(const char *line, uint32_t *port)
{
	if (strncmp(line, "CONNECT ", 8) != 0)
		return false;
	const char *p = line + 8;
	uint64_t v = 0;
	if (*p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT32_MAX)
			return false;
	}
	if (*p == '\r')
		p++;
	if (*p)
		return false;
	*port = (uint32_t)v;
	return true;
}

static uint32_t alloc_host_port(struct vsock_mux *m)
{
	for (;;) {
		uint32_t p = m->next_port++;
		if (m->next_port < HOST_PORT_FIRST || m->next_port == UINT32_MAX)
			m->next_port = HOST_PORT_FIRST;
		bool used = false;
		for (struct conn *c = m->conns; c && !used; c = c->next)
			used = c->state != CONN_HANDSHAKE && c->host_port == p;
		if (!used)
			return p;
	}
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The timer fires at `at` unless it already fires before. */
static void timer_arm(struct vsock_mux *m, uint64_t at)
{
	if (m->timer_ns && m->timer_ns <= at)
		return;
	struct itimerspec its = {.it_value = {.tv_sec = (time_t)(at / 1000000000ull),
					      .tv_nsec = (long)(at % 1000000000ull)}};
	if (timerfd_settime(m->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
		vs_warn("vsock: connect timer: %s", strerror(errno));
		return;
	}
	m->timer_ns = at;
}

/* The timer fired: every REQUEST past its deadline is reset (an RST to the guest, so a
 * late RESPONSE finds no connection and is answered with an RST too; the host socket is
 * closed), and the timer is set for the next deadline. */
static void expire_requests(struct vsock_mux *m)
{
	uint64_t v;
	while (read(m->timer_fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	m->timer_ns = 0;
	uint64_t now = now_ns(), next = 0;
	for (struct conn *c = m->conns, *after; c; c = after) {
		after = c->next;
		if (c->state != CONN_REQUESTED)
			continue;
		if (c->deadline_ns <= now) {
			vs_debug("vsock: the guest did not answer a connection to port %u in 2 s",
				 c->guest_port);
			conn_reset(m, c);
		} else if (!next || c->deadline_ns < next) {
			next = c->deadline_ns;
		}
	}
	if (next)
		timer_arm(m, next);
}

/* Reads the CONNECT line a byte at a time: what follows it is the stream's, for the guest. */
static void handshake_read(struct vsock_mux *m, struct conn *c)
{
	for (;;) {
		char ch;
		ssize_t n = read(c->fd, &ch, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			c->readable = false;
			return;
		}
		if (n <= 0) {
			conn_kill(m, c);
			return;
		}
		if (ch != '\n') {
			if (c->line_len + 1 >= CONNECT_LINE_MAX) {
				conn_kill(m, c);
				return;
			}
			c->line[c->line_len++] = ch;
			continue;
		}
		c->line[c->line_len] = '\0';
		uint32_t port;
		if (!parse_connect(c->line, &port)) {
			vs_debug("vsock: a host connection sent `%.*s`, not CONNECT <port>",
				 (int)c->line_len, c->line);
			conn_kill(m, c);
			return;
		}
		c->host_port = alloc_host_port(m);
		c->guest_port = port;
		c->state = CONN_REQUESTED;
		conn_hash_add(m, c);
		if (!ctl_push(m, c->host_port, c->guest_port, VSOCK_OP_REQUEST, 0)) {
			conn_kill(m, c);
			return;
		}
		c->deadline_ns = now_ns() + CONNECT_TIMEOUT_NS;
		timer_arm(m, c->deadline_ns);
		return;
	}
}

static void accept_all(struct vsock_mux *m)
{
	for (;;) {
		int fd = accept4(m->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN)
				vs_warn("vsock: accept on %s: %s", m->uds, strerror(errno));
			return;
		}
		if (m->nconns >= VSOCK_MAX_CONNS) {
			m->drops++;
			close(fd);
			continue;
		}
		struct conn *c = conn_new(m, fd, CONN_HANDSHAKE);
		if (c) {
			c->readable = true;
			handshake_read(m, c);
		}
	}
}

static void conn_event(struct vsock_mux *m, struct conn *c, uint32_t events)
{
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->readable = true;
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		c->writable = true;
	if (c->state == CONN_HANDSHAKE) {
		if (c->readable)
			handshake_read(m, c);
		return;
	}
	if (c->buf_len && c->writable && !conn_flush(m, c))
		return;
	rx_sched(m, c);
}

void vsock_mux_poll(struct vsock_mux *m)
{
	struct epoll_event evs[64];
	for (;;) {
		int n = epoll_wait(m->epfd, evs, 64, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		/* epoll gives each fd once a call, and handling one connection frees no other;
		 * the timer frees many, so it waits until this call's events are handled */
		bool timer = false;
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == m)
				accept_all(m);
			else if (evs[i].data.ptr == &m->timer_fd)
				timer = true;
			else
				conn_event(m, evs[i].data.ptr, evs[i].events);
		}
		if (timer)
			expire_requests(m);
		if (n < 64)
			return;
	}
}

/* ------------------------------------------------------------------ guest -> host */

static void guest_connect(struct vsock_mux *m, const struct vsock_hdr *h)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(path, sizeof(path), "%s_%u", m->uds, h->dst_port);
	memcpy(sa.sun_path, path, sizeof(path));
	int fd = -1;
	if (m->nconns < VSOCK_MAX_CONNS && vsock_fwd_cnt_valid(0, h->fwd_cnt, 0))
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		vs_debug("vsock: guest port %u -> %s: %s", h->src_port, path, strerror(errno));
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		ctl_push(m, h->dst_port, h->src_port, VSOCK_OP_RST, 0);
		return;
	}
	struct conn *c = conn_new(m, fd, CONN_ESTABLISHED);
	if (!c) {
		ctl_push(m, h->dst_port, h->src_port, VSOCK_OP_RST, 0);
		return;
	}
	c->host_port = h->dst_port;
	c->guest_port = h->src_port;
	c->peer_buf_alloc = h->buf_alloc;
	conn_hash_add(m, c);
	if (!ctl_push(m, c->host_port, c->guest_port, VSOCK_OP_RESPONSE, 0))
		conn_kill(m, c);
}

/* The guest's bytes of an RW packet to the socket, what it does not take to the ring.
 * false: c is gone. */
static bool guest_rw(struct vsock_mux *m, struct conn *c, const struct virtq_chain *chain,
		     uint32_t len)
{
	if (c->state != CONN_ESTABLISHED || c->peer_shut_send) {
		conn_reset(m, c);
		return false;
	}
	if (len > VSOCK_CONN_BUF - c->buf_len) {
		/* we said buf_alloc is VSOCK_CONN_BUF and the guest knows at most what we
		 * forwarded: an honest guest never has more than that in flight */
		if (m->lies++ < LIES_LOGGED)
			vs_warn("vsock: guest port %u sent %u bytes with %u of credit left: it "
				"ignores flow control; connection reset",
				c->guest_port, len, VSOCK_CONN_BUF - c->buf_len);
		conn_reset(m, c);
		return false;
	}
	uint32_t done = 0;
	if (!c->buf_len && len) {
		struct iovec iov[VIRTQ_MAX_SEGS];
		int k = segs_iov(chain->out, chain->n_out, VSOCK_HDR_LEN, len, iov);
		ssize_t n;
		do
			n = send_iov(c->fd, iov, k);
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno != EAGAIN) {
			conn_reset(m, c);
			return false;
		}
		if (n < 0)
			c->writable = false;
		done = n > 0 ? (uint32_t)n : 0;
		c->fwd_cnt += done;
	}
	if (!conn_buffer(c, chain, VSOCK_HDR_LEN + (uint64_t)done, len - done)) {
		vs_warn("vsock: guest port %u: out of memory for its bytes; connection reset",
			c->guest_port);
		conn_reset(m, c);
		return false;
	}
	if (c->buf_len && c->writable)
		return conn_flush(m, c);
	credit_check(m, c);
	return true;
}

int vsock_mux_tx(struct vsock_mux *m, const struct virtq_chain *chain, const char **why)
{
	uint8_t raw[VSOCK_HDR_LEN];
	struct vsock_hdr h;
	if (chain->out_len < VSOCK_HDR_LEN) {
		*why = "tx packet is shorter than its header";
		return -1;
	}
	virtq_chain_read(chain, 0, raw, VSOCK_HDR_LEN);
	vsock_hdr_decode(raw, &h);
	if ((*why = vsock_hdr_invalid(&h, m->cid, chain->out_len - VSOCK_HDR_LEN)))
		return -1;
	if (h.dst_cid != VSOCK_HOST_CID || h.type != VSOCK_TYPE_STREAM) {
		/* another VM or the seqpacket type we did not offer: nowhere to go */
		m->drops++;
		return 0;
	}
	struct conn *c = conn_find(m, h.dst_port, h.src_port);
	if (!c) {
		if (h.op == VSOCK_OP_REQUEST)
			guest_connect(m, &h);
		else if (h.op != VSOCK_OP_RST)
			ctl_push(m, h.dst_port, h.src_port, VSOCK_OP_RST, 0);
		return 0;
	}
	if (!vsock_fwd_cnt_valid(c->peer_fwd_cnt, h.fwd_cnt, c->rx_cnt)) {
		if (m->lies++ < LIES_LOGGED)
			vs_warn("vsock: guest port %u claims fwd_cnt %u, but was sent %u bytes "
				"(had %u): a lie about credit; connection reset",
				c->guest_port, h.fwd_cnt, c->rx_cnt, c->peer_fwd_cnt);
		conn_reset(m, c);
		return 0;
	}
	c->peer_buf_alloc = h.buf_alloc;
	c->peer_fwd_cnt = h.fwd_cnt;
	c->credit_request_queued = false;
	switch (h.op) {
	case VSOCK_OP_RST:
		conn_kill(m, c);
		return 0;
	case VSOCK_OP_RESPONSE: {
		if (c->state != CONN_REQUESTED) {
			conn_reset(m, c);
			return 0;
		}
		char ok[24];
		int n = snprintf(ok, sizeof(ok), "OK %u\n", c->host_port);
		/* a fresh socket's buffer takes a dozen bytes: short means it is gone */
		if (send(c->fd, ok, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
			conn_reset(m, c);
			return 0;
		}
		c->state = CONN_ESTABLISHED;
		break;
	}
	case VSOCK_OP_SHUTDOWN:
		if (c->state != CONN_ESTABLISHED) {
			conn_reset(m, c);
			return 0;
		}
		c->peer_shut_send |= (h.flags & VSOCK_SHUTDOWN_SEND) != 0;
		c->peer_shut_rcv |= (h.flags & VSOCK_SHUTDOWN_RCV) != 0;
		if (!shutdown_check(m, c))
			return 0;
		break;
	case VSOCK_OP_RW:
		if (!guest_rw(m, c, chain, h.len))
			return 0;
		break;
	case VSOCK_OP_CREDIT_REQUEST:
		if (!c->credit_update_queued)
			c->credit_update_queued =
			    ctl_push(m, c->host_port, c->guest_port, VSOCK_OP_CREDIT_UPDATE, 0);
		break;
	case VSOCK_OP_CREDIT_UPDATE:
		break;
	default: /* REQUEST for a connection that exists */
		conn_reset(m, c);
		return 0;
	}
	rx_sched(m, c);
	return 0;
}

/* ------------------------------------------------------------------ host -> guest */

bool vsock_mux_rx_pending(const struct vsock_mux *m)
{
	return m->ctl_len || m->rx_head;
}

static int64_t put_hdr(struct vsock_mux *m, const struct virtq_chain *chain, struct conn *c,
		       uint32_t host_port, uint32_t guest_port, uint16_t op, uint32_t flags,
		       uint32_t len)
{
	struct vsock_hdr h = {
	    .src_cid = VSOCK_HOST_CID,
	    .dst_cid = m->cid,
	    .src_port = host_port,
	    .dst_port = guest_port,
	    .len = len,
	    .type = VSOCK_TYPE_STREAM,
	    .op = op,
	    .flags = flags,
	};
	if (c) {
		h.buf_alloc = VSOCK_CONN_BUF;
		h.fwd_cnt = c->fwd_cnt;
		c->last_fwd_sent = c->fwd_cnt;
	}
	uint8_t raw[VSOCK_HDR_LEN];
	vsock_hdr_encode(&h, raw);
	virtq_chain_write(chain, 0, raw, VSOCK_HDR_LEN);
	return VSOCK_HDR_LEN + (int64_t)len;
}

static struct conn *rx_pop(struct vsock_mux *m)
{
	struct conn *c = m->rx_head;
	if (!c)
		return NULL;
	m->rx_head = c->rx_next;
	if (!m->rx_head)
		m->rx_tail = NULL;
	c->rx_queued = false;
	return c;
}

int64_t vsock_mux_rx(struct vsock_mux *m, const struct virtq_chain *chain)
{
	if (chain->in_len < VSOCK_HDR_LEN)
		return -1;
	while (m->ctl_len) {
		struct ctl e = m->ctl[m->ctl_head];
		m->ctl_head = (m->ctl_head + 1) % CTL_RING;
		m->ctl_len--;
		struct conn *c = conn_find(m, e.host_port, e.guest_port);
		if (!c && e.op != VSOCK_OP_RST)
			continue; /* the connection went since */
		if (e.op == VSOCK_OP_CREDIT_UPDATE)
			c->credit_update_queued = false;
		return put_hdr(m, chain, c, e.host_port, e.guest_port, e.op, e.flags, 0);
	}
	struct conn *c;
	while ((c = rx_pop(m))) {
		if (!conn_wants_rx(c))
			continue;
		uint64_t room = chain->in_len - VSOCK_HDR_LEN;
		uint32_t credit = vsock_peer_free(c->peer_buf_alloc, c->peer_fwd_cnt, c->rx_cnt);
		if (room > credit)
			room = credit;
		if (room > VSOCK_MAX_PAYLOAD)
			room = VSOCK_MAX_PAYLOAD;
		if (room == 0) {
			rx_sched(m, c); /* asks for credit */
			continue;
		}
		struct iovec iov[VIRTQ_MAX_SEGS];
		int k = segs_iov(chain->in, chain->n_in, VSOCK_HDR_LEN, room, iov);
		ssize_t n = readv(c->fd, iov, k);
		if (n > 0) {
			c->rx_cnt += (uint32_t)n;
			int64_t len = put_hdr(m, chain, c, c->host_port, c->guest_port, VSOCK_OP_RW,
					      0, (uint32_t)n);
			rx_sched(m, c);
			return len;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			c->readable = errno == EINTR;
			rx_sched(m, c);
			continue;
		}
		if (n == 0) {
			/* the host sent all it will; when the guest is done sending too, the
			 * connection is over */
			c->host_eof = true;
			if (c->peer_shut_send && !c->buf_len) {
				int64_t len = put_hdr(m, chain, NULL, c->host_port, c->guest_port,
						      VSOCK_OP_RST, 0, 0);
				conn_kill(m, c);
				return len;
			}
			return put_hdr(m, chain, c, c->host_port, c->guest_port, VSOCK_OP_SHUTDOWN,
				       VSOCK_SHUTDOWN_SEND, 0);
		}
		int64_t len =
		    put_hdr(m, chain, NULL, c->host_port, c->guest_port, VSOCK_OP_RST, 0, 0);
		conn_kill(m, c);
		return len;
	}
	return 0;
}

/* ------------------------------------------------------------------ life */

static void kill_all(struct vsock_mux *m)
{
	while (m->conns)
		conn_kill(m, m->conns);
	m->ctl_head = m->ctl_len = 0;
	m->rx_head = m->rx_tail = NULL;
}

void vsock_mux_reset(struct vsock_mux *m)
{
	kill_all(m);
}

void vsock_mux_set_cid(struct vsock_mux *m, uint64_t guest_cid)
{
	m->cid = guest_cid;
}

int vsock_mux_epfd(const struct vsock_mux *m)
{
	return m->epfd;
}

void vsock_mux_stats(const struct vsock_mux *m, struct vsock_mux_stats *out)
{
	*out = (struct vsock_mux_stats){.conns = m->nconns, .lies = m->lies, .drops = m->drops};
}

static int listen_on(const char *path, vs_err_t *err)
{
	int fd = vs_unix_listen(path, SOCK_NONBLOCK | SOCK_CLOEXEC, 128, true, err);
	if (fd < 0)
		return vs_err_wrap(err, "vsock%s",
				   err && *err && (*err)->errnum == EADDRINUSE
				       ? " (another VMM listens there)"
				       : "");
	return fd;
}

struct vsock_mux *vsock_mux_new(uint64_t guest_cid, const char *uds, vs_err_t *err)
{
	struct vsock_mux *m = calloc(1, sizeof(*m));
	if (!m) {
		vs_err(err, ENOMEM, "vsock");
		return NULL;
	}
	m->cid = guest_cid;
	/* A random start: after a snapshot's load the guest still holds the sockets of the
	 * connections it had (reset, closing for seconds), and a new connection from the same
	 * host port as one of those would be refused. */
	uint32_t r = 0;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint32_t)time(NULL);
	m->next_port = HOST_PORT_FIRST + r % (UINT32_MAX - 1 - HOST_PORT_FIRST);
	m->listen_fd = -1;
	m->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (m->timer_fd < 0) {
		vs_err(err, errno, "vsock: timerfd for connection timeouts");
		free(m);
		return NULL;
	}
	snprintf(m->uds, sizeof(m->uds), "%s", uds);
	m->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (m->epfd < 0) {
		vs_err(err, errno, "vsock: epoll");
		close(m->timer_fd);
		free(m);
		return NULL;
	}
	struct epoll_event tev = {.events = EPOLLIN, .data.ptr = &m->timer_fd};
	if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->timer_fd, &tev) < 0) {
		vs_err(err, errno, "vsock: epoll of the connection timer");
		close(m->epfd);
		close(m->timer_fd);
		free(m);
		return NULL;
	}
	m->listen_fd = listen_on(uds, err);
	struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = m};
	if (m->listen_fd < 0 || epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->listen_fd, &ev) < 0) {
		if (m->listen_fd >= 0) {
			vs_err(err, errno, "vsock: epoll");
			close(m->listen_fd);
			unlink(uds);
		}
		close(m->epfd);
		close(m->timer_fd);
		free(m);
		return NULL;
	}
	return m;
}

void vsock_mux_free(struct vsock_mux *m)
{
	if (!m)
		return;
	kill_all(m);
	close(m->listen_fd);
	unlink(m->uds);
	close(m->epfd);
	close(m->timer_fd);
	free(m);
}
