#include "base/nl.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/util.h"

static uint32_t nl_seq;

void nl_init(struct nl_msg *m, uint16_t type, uint16_t flags, const void *hdr, size_t hdr_len)
{
	memset(m, 0, sizeof(*m));
	m->h.nlmsg_len = (uint32_t)NLMSG_LENGTH(hdr_len);
	m->h.nlmsg_type = type;
	m->h.nlmsg_flags = (uint16_t)(NLM_F_REQUEST | flags);
	memcpy(NLMSG_DATA(&m->h), hdr, hdr_len);
}

void nl_put(struct nl_msg *m, uint16_t type, const void *data, size_t len)
{
	size_t at = NLMSG_ALIGN(m->h.nlmsg_len);
	if (m->overflow || at + RTA_SPACE(len) > sizeof(m->buf)) {
		m->overflow = true;
		return;
	}
	struct rtattr *a = (struct rtattr *)(m->buf + at);
	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(a), data, len);
	m->h.nlmsg_len = (uint32_t)(at + RTA_ALIGN(a->rta_len));
}

void nl_put_u32(struct nl_msg *m, uint16_t type, uint32_t v)
{
	nl_put(m, type, &v, sizeof(v));
}

void nl_put_str(struct nl_msg *m, uint16_t type, const char *s)
{
	nl_put(m, type, s, strlen(s) + 1);
}

struct rtattr *nl_nest_begin(struct nl_msg *m, uint16_t type)
{
	size_t at = NLMSG_ALIGN(m->h.nlmsg_len);
	nl_put(m, type, NULL, 0);
	return m->overflow ? NULL : (struct rtattr *)(m->buf + at);
}

void nl_nest_end(struct nl_msg *m, struct rtattr *a)
{
	if (a && !m->overflow)
		a->rta_len = (unsigned short)(m->buf + m->h.nlmsg_len - (char *)a);
}

int nl_open(vs_err_t *err)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return vs_err(err, errno, "netlink socket");
	/* a request's answer comes within moments; a wedged kernel must not hang create */
	struct timeval tv = {10, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

int nl_open_in(int netns_fd, vs_err_t *err)
{
	cleanup_close int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return vs_err(err, errno, "open /proc/thread-self/ns/net");
	if (setns(netns_fd, CLONE_NEWNET) < 0)
		return vs_err(err, errno, "enter the network namespace");
	int fd = nl_open(err);
	if (setns(self, CLONE_NEWNET) < 0) {
		/* a thread left in the container's namespace would do the rest there */
		vs_err(err, errno, "return to vessel's network namespace");
		if (fd >= 0)
			close(fd);
		abort();
	}
	return fd;
}

static int nl_send(int fd, struct nl_msg *m)
{
	if (m->overflow)
		return -EMSGSIZE;
	m->h.nlmsg_seq = ++nl_seq;
	ssize_t n = send(fd, m->buf, m->h.nlmsg_len, 0);
	return n == (ssize_t)m->h.nlmsg_len ? 0 : -(n < 0 ? errno : EIO);
}

int nl_request(int fd, struct nl_msg *m)
{
	m->h.nlmsg_flags |= NLM_F_ACK;
	int rc = nl_send(fd, m);
	if (rc < 0)
		return rc;
	union {
		struct nlmsghdr h;
		char buf[8192];
	} r;
	for (;;) {
		ssize_t n = recv(fd, r.buf, sizeof(r.buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		for (struct nlmsghdr *h = &r.h; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != m->h.nlmsg_seq || h->nlmsg_type != NLMSG_ERROR)
				continue;
			if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
				return -EPROTO;
			const struct nlmsgerr *e = NLMSG_DATA(h);
			return e->error > 0 ? -EPROTO : e->error;
		}
	}
}

int nl_dump(int fd, struct nl_msg *m, int (*fn)(const struct nlmsghdr *h, void *arg), void *arg,
	    vs_err_t *err)
{
	m->h.nlmsg_flags |= NLM_F_DUMP;
	int rc = nl_send(fd, m);
	if (rc < 0)
		return vs_err(err, -rc, "netlink dump request");
	char buf[32768];
	bool stopped = false;
	for (;;) {
		struct iovec iov = {buf, sizeof(buf)};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		ssize_t n = recvmsg(fd, &mh, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return vs_err(err, errno, "netlink dump");
		if (mh.msg_flags & MSG_TRUNC)
			return vs_err(err, EMSGSIZE, "netlink dump: a message was truncated");
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != m->h.nlmsg_seq)
				continue;
			if (h->nlmsg_type == NLMSG_DONE)
				return stopped ? -1 : 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				int e_no =
				    h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) ? -e->error : EPROTO;
				return vs_err(err, e_no, "netlink dump");
			}
			/* after a refusal the rest is read, so the socket stays usable */
			if (!stopped && fn(h, arg) < 0)
				stopped = true;
		}
	}
}

static void parse_rtattrs(const struct rtattr *a, size_t len, const struct rtattr **tb, int max)
{
	memset(tb, 0, sizeof(*tb) * (size_t)(max + 1));
	for (; RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type <= max)
			tb[a->rta_type] = a;
}

int nl_parse_attrs(const struct nlmsghdr *h, size_t hdr_len, const struct rtattr **tb, int max)
{
	if (h->nlmsg_len < NLMSG_LENGTH(hdr_len))
		return -1;
	const struct rtattr *a =
	    (const struct rtattr *)((const char *)NLMSG_DATA(h) + NLMSG_ALIGN(hdr_len));
	size_t len = h->nlmsg_len - NLMSG_SPACE(hdr_len);
	if (h->nlmsg_len < NLMSG_SPACE(hdr_len))
		len = 0;
	parse_rtattrs(a, len, tb, max);
	return 0;
}

void nl_parse_nested(const struct rtattr *nest, const struct rtattr **tb, int max)
{
	parse_rtattrs(RTA_DATA(nest), RTA_PAYLOAD(nest), tb, max);
}
