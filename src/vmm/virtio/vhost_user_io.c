#include "vmm/virtio/vhost_user_io.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

int vhu_connect(const char *path, vs_err_t *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return vs_err(err, 0, "`%s`: longer than a Unix socket path can be", path);
	strcpy(sa.sun_path, path);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return vs_err(err, errno, "socket");
	struct timeval tv = {.tv_sec = VHU_TIMEOUT_S};
	if (setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		int e = errno;
		close(s);
		return vs_err(err, e, "setsockopt");
	}
	int r;
	do
		r = connect(s, (struct sockaddr *)&sa, sizeof(sa));
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		int e = errno;
		close(s);
		errno = e;
		return vs_err(err, e, "connect");
	}
	return s;
}

int vhu_send(int sock, const uint8_t *msg, size_t len, const int *fds, unsigned nfds, vs_err_t *err)
{
	if (nfds > VHU_MAX_REGIONS)
		return vs_err(err, EINVAL, "%s: %u fds", vhu_request_name(msg[0]), nfds);
	union {
		char buf[CMSG_SPACE(sizeof(int) * VHU_MAX_REGIONS)];
		struct cmsghdr align;
	} ctl;
	size_t off = 0;
	while (off < len) {
		struct iovec iov = {.iov_base = (void *)(msg + off), .iov_len = len - off};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		if (off == 0 && nfds) { /* the fds go with the first byte only */
			memset(&ctl, 0, sizeof(ctl));
			mh.msg_control = ctl.buf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
			struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
			memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
		}
		ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			uint32_t req;
			memcpy(&req, msg, 4);
			return vs_err(err, errno == EAGAIN ? ETIMEDOUT : errno, "sending %s",
				      vhu_request_name(req));
		}
		off += (size_t)n;
	}
	return 0;
}

/* Exactly len bytes, or -1: EOF is the back-end gone, a timeout one that stopped. */
static int read_all(int sock, uint8_t *p, size_t len, enum vhu_request req, vs_err_t *err)
{
	size_t off = 0;
	while (off < len) {
		ssize_t n = read(sock, p + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return vs_err(err, errno == EAGAIN ? ETIMEDOUT : errno,
				      "reading the %s reply", vhu_request_name(req));
		if (n == 0)
			return vs_err(err, 0,
				      "the back-end closed the connection before its %s "
				      "reply",
				      vhu_request_name(req));
		off += (size_t)n;
	}
	return 0;
}

ssize_t vhu_recv_reply(int sock, enum vhu_request req, uint8_t *buf, vs_err_t *err)
{
	uint32_t size;
	if (read_all(sock, buf, VHU_HDR_SIZE, req, err) < 0 ||
	    vhu_check_reply_header(buf, req, &size, err) < 0 ||
	    read_all(sock, buf + VHU_HDR_SIZE, size, req, err) < 0)
		return -1;
	return VHU_HDR_SIZE + size;
}
