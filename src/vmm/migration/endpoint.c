/* Where a migration goes: `unix:PATH` or `tcp:ADDR:PORT` (a numeric IPv4 address, or an
 * IPv6 one in brackets: no resolver, so the static build needs no NSS), and the socket
 * I/O both ends share. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/usock.h"
#include "base/util.h"
#include "vmm/migration/migration.h"

struct endpoint {
	struct sockaddr_storage sa;
	socklen_t len;
	bool unix_path;
};

static int parse_url(const char *url, struct endpoint *e, vs_err_t *err)
{
	memset(e, 0, sizeof(*e));
	if (strncmp(url, "unix:", 5) == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)&e->sa;
		const char *path = url + 5;
		if (!*path || strlen(path) >= sizeof(un->sun_path))
			return vs_err(err, 0, "`%s`: a Unix socket path of 1 to %zu bytes", url,
				      sizeof(un->sun_path) - 1);
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, path);
		e->len = sizeof(*un);
		e->unix_path = true;
		return 0;
	}
	if (strncmp(url, "tcp:", 4) != 0)
		return vs_err(err, 0, "`%s`: not unix:PATH or tcp:ADDR:PORT", url);
	const char *hp = url + 4, *colon = strrchr(hp, ':');
	if (!colon || colon == hp)
		return vs_err(err, 0, "`%s`: tcp:ADDR:PORT needs an address and a port", url);
	char *end;
	errno = 0;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || port == 0 || port > 65535)
		return vs_err(err, 0, "`%s`: port must be 1 to 65535", url);
	char host[64];
	size_t hl = (size_t)(colon - hp);
	if (hl >= sizeof(host))
		return vs_err(err, 0, "`%s`: address too long", url);
	memcpy(host, hp, hl);
	host[hl] = '\0';
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&e->sa;
		host[hl - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &in6->sin6_addr) != 1)
			return vs_err(err, 0, "`%s`: not an IPv6 address", url);
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		e->len = sizeof(*in6);
		return 0;
	}
	struct sockaddr_in *in = (struct sockaddr_in *)&e->sa;
	if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
		return vs_err(err, 0, "`%s`: `%s` is not a numeric IPv4 address ([v6] in brackets)",
			      url, host);
	in->sin_family = AF_INET;
	in->sin_port = htons((uint16_t)port);
	e->len = sizeof(*in);
	return 0;
}

static void tune(int fd, bool unix_path)
{
	if (unix_path)
		return;
	int one = 1;
	/* the small messages (HELLO, COMPLETE, the ACKs) are on the switch's critical path */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

bool mig_url_is_unix(const char *url)
{
	return strncmp(url, "unix:", 5) == 0;
}

int mig_connect(const char *url, vs_err_t *err)
{
	struct endpoint e;
	if (parse_url(url, &e, err) < 0)
		return -1;
	int fd = socket(e.sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return vs_err(err, errno, "socket for `%s`", url);
	if (connect(fd, (struct sockaddr *)&e.sa, e.len) < 0) {
		int en = errno;
		close(fd);
		return vs_err(err, en, "connect to `%s`", url);
	}
	tune(fd, e.unix_path);
	return fd;
}

int mig_listen(const char *url, vs_err_t *err)
{
	struct endpoint e;
	if (parse_url(url, &e, err) < 0)
		return -1;
	if (e.unix_path) {
		int fd = vs_unix_listen(url + 5, SOCK_CLOEXEC, 1, false, err);
		return fd < 0 ? vs_err_wrap(err, "migration") : fd;
	}
	int fd = socket(e.sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return vs_err(err, errno, "socket for `%s`", url);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&e.sa, e.len) < 0 || listen(fd, 1) < 0) {
		int en = errno;
		close(fd);
		return vs_err(err, en, "listen on `%s`", url);
	}
	return fd;
}

void mig_unlisten(const char *url, int fd)
{
	if (fd >= 0)
		close(fd);
	if (strncmp(url, "unix:", 5) == 0)
		unlink(url + 5);
}

int mig_read_full(int fd, void *buf, size_t len, vs_err_t *err)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = recv(fd, p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return vs_err(err, errno, "read from the peer");
		if (n == 0)
			return vs_err(err, 0, "the peer hung up (truncated stream)");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int mig_send_all(int fd, const void *buf, size_t len, vs_err_t *err)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return vs_err(err, errno, "send to the peer");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int mig_send_msg(int fd, enum mig_type type, const void *a, size_t alen, const void *b, size_t blen,
		 vs_err_t *err)
{
	uint8_t h[MIG_HEADER_SIZE];
	mig_put_header(h, type, alen + blen);
	struct iovec iov[3] = {{h, sizeof(h)}, {(void *)a, alen}, {(void *)b, blen}};
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = 3};
	size_t left = sizeof(h) + alen + blen;
	while (left) {
		/* MSG_NOSIGNAL: a destination that vanished is an error here, not SIGPIPE */
		ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return vs_err(err, errno, "send %s to the peer", mig_type_name(type));
		left -= (size_t)n;
		while (n > 0 && m.msg_iovlen) {
			if ((size_t)n >= m.msg_iov->iov_len) {
				n -= (ssize_t)m.msg_iov->iov_len;
				m.msg_iov++;
				m.msg_iovlen--;
			} else {
				m.msg_iov->iov_base = (uint8_t *)m.msg_iov->iov_base + n;
				m.msg_iov->iov_len -= (size_t)n;
				n = 0;
			}
		}
	}
	return 0;
}

int mig_send_ram_fd(int fd, uint64_t ram_size, int mem_fd, vs_err_t *err)
{
	uint8_t m[MIG_HEADER_SIZE + MIG_RAM_FD_LEN];
	mig_put_header(m, MIG_RAM_FD, MIG_RAM_FD_LEN);
	for (int i = 0; i < 8; i++)
		m[MIG_HEADER_SIZE + i] = (uint8_t)(ram_size >> (8 * i));
	ssize_t n = vs_send_fd(fd, m, sizeof(m), mem_fd);
	if (n < 0)
		return vs_err(err, errno, "send RAM_FD (the guest RAM's memfd) to the peer");
	/* the fd went with the first byte: the rest, if the socket took only part */
	if ((size_t)n < sizeof(m))
		return mig_send_all(fd, m + n, sizeof(m) - (size_t)n, err);
	return 0;
}

int mig_read_full_fd(int fd, void *buf, size_t len, int *passed, vs_err_t *err)
{
	uint8_t *p = buf;
	*passed = -1;
	while (len) {
		int got;
		ssize_t n = vs_recv_fd(fd, p, len, &got);
		if (n < 0 && errno == EPROTO)
			return vs_err(err, 0, "the peer passed more file descriptors than one");
		if (n < 0)
			return vs_err(err, errno, "read from the peer");
		if (got >= 0 && *passed < 0)
			*passed = got;
		else if (got >= 0)
			close(got);
		if (n == 0)
			return vs_err(err, 0, "the peer hung up (truncated stream)");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}
