/* The API's Unix socket and its connections, non-blocking in the controller's loop: a
 * client that is slow, silent or never reads its answers costs a connection slot, never
 * the loop's time. At most API_CONNS connections (a new one past that closes the one idle
 * longest); one idle for API_IDLE_S seconds is closed. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/usock.h"
#include "vmm/api/api.h"
#include "vmm/loop.h"

#define API_CONNS 16
#define API_IDLE_S 60

struct conn {
	struct api_server *s;
	int fd;
	struct api_http *h;
	bool writing;  /* watched for EPOLLOUT (output pending) */
	bool closing;  /* close once the output is sent */
	bool draining; /* output sent and shut: reading what the client still sends */
	time_t last;
};

struct api_server {
	struct loop *loop;
	struct api *api;
	int fd, timer_fd;
	char *path;
	struct conn *conns[API_CONNS];
};

static time_t now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec;
}

static void conn_close(struct conn *c)
{
	struct api_server *s = c->s;
	for (size_t i = 0; i < API_CONNS; i++)
		if (s->conns[i] == c)
			s->conns[i] = NULL;
	loop_del(s->loop, c->fd);
	close(c->fd);
	api_http_free(c->h);
	free(c);
}

static void on_conn(void *opaque, uint32_t events);

static void watch(struct conn *c, bool out)
{
	if (c->writing == out)
		return;
	vs_err_t err = NULL;
	loop_del(c->s->loop, c->fd);
	if (loop_add(c->s->loop, c->fd, out ? EPOLLOUT : EPOLLIN, on_conn, c, &err) < 0) {
		vs_warn("API connection: %s", err->msg);
		vs_err_free(&err);
	}
	c->writing = out;
}

/* Sends what it can; returns false when the connection is gone. */
static bool flush(struct conn *c)
{
	size_t len;
	const char *out = api_http_output(c->h, &len);
	while (len) {
		ssize_t n = send(c->fd, out, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			conn_close(c);
			return false;
		}
		api_http_sent(c->h, (size_t)n);
		out = api_http_output(c->h, &len);
	}
	if (!len && c->closing) {
		/* Closing a Unix socket with unread input resets it, and the client would lose
		 * our answer: shut our side, then read what it still sends until it closes. */
		shutdown(c->fd, SHUT_WR);
		c->closing = false;
		c->draining = true;
	}
	/* while answers wait, read nothing more: a client that never reads can't make us
	 * queue without end */
	watch(c, len > 0);
	return true;
}

static void on_conn(void *opaque, uint32_t events)
{
	struct conn *c = opaque;
	c->last = now();
	if (c->writing) {
		flush(c);
		return;
	}
	char buf[4096];
	ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0 || (events & EPOLLERR)) {
		conn_close(c);
		return;
	}
	if (c->draining)
		return; /* the idle timer ends a client that never closes */
	if (!api_http_feed(c->h, buf, (size_t)n))
		c->closing = true;
	flush(c);
}

static void on_accept(void *opaque, uint32_t events)
{
	struct api_server *s = opaque;
	(void)events;
	int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	size_t slot = API_CONNS, oldest = 0;
	for (size_t i = 0; i < API_CONNS; i++) {
		if (!s->conns[i]) {
			slot = i;
			break;
		}
		if (s->conns[i]->last < s->conns[oldest]->last)
			oldest = i;
	}
	if (slot == API_CONNS) {
		conn_close(s->conns[oldest]);
		slot = oldest;
	}
	struct conn *c = calloc(1, sizeof(*c));
	vs_err_t err = NULL;
	if (!c || !(c->h = api_http_new(s->api))) {
		free(c);
		close(fd);
		return;
	}
	c->s = s;
	c->fd = fd;
	c->last = now();
	if (loop_add(s->loop, fd, EPOLLIN, on_conn, c, &err) < 0) {
		vs_warn("API connection: %s", err->msg);
		vs_err_free(&err);
		api_http_free(c->h);
		free(c);
		close(fd);
		return;
	}
	s->conns[slot] = c;
}

static void on_timer(void *opaque, uint32_t events)
{
	struct api_server *s = opaque;
	(void)events;
	uint64_t ticks;
	if (read(s->timer_fd, &ticks, sizeof(ticks)) < 0)
		return;
	time_t t = now();
	for (size_t i = 0; i < API_CONNS; i++)
		if (s->conns[i] && t - s->conns[i]->last >= API_IDLE_S)
			conn_close(s->conns[i]);
}

struct api_server *api_server_open(struct loop *loop, const char *path, struct api *a,
				   vs_err_t *err)
{
	struct api_server *s = calloc(1, sizeof(*s));
	if (!s) {
		vs_err(err, ENOMEM, "API socket");
		return NULL;
	}
	s->loop = loop;
	s->api = a;
	s->timer_fd = -1;
	/* a path that exists is refused: a second VMM on one socket is a mistake */
	s->fd = vs_unix_listen(path, SOCK_NONBLOCK | SOCK_CLOEXEC, 16, false, err);
	if (s->fd < 0) {
		vs_err_wrap(err, "--api-sock");
		goto fail;
	}
	s->path = strdup(path);
	if (!s->path) {
		vs_err(err, ENOMEM, "--api-sock `%s`", path);
		goto fail;
	}
	s->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	struct itimerspec its = {.it_interval = {.tv_sec = 5}, .it_value = {.tv_sec = 5}};
	if (s->timer_fd < 0 || timerfd_settime(s->timer_fd, 0, &its, NULL) < 0) {
		vs_err(err, errno, "API socket: timerfd");
		goto fail;
	}
	if (loop_add(loop, s->fd, EPOLLIN, on_accept, s, err) < 0)
		goto fail;
	if (loop_add(loop, s->timer_fd, EPOLLIN, on_timer, s, err) < 0) {
		loop_del(loop, s->fd);
		goto fail;
	}
	return s;
fail:
	if (s->path)
		unlink(s->path);
	if (s->fd >= 0)
		close(s->fd);
	if (s->timer_fd >= 0)
		close(s->timer_fd);
	free(s->path);
	free(s);
	return NULL;
}

void api_server_close(struct api_server *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < API_CONNS; i++)
		if (s->conns[i])
			conn_close(s->conns[i]);
	loop_del(s->loop, s->fd);
	loop_del(s->loop, s->timer_fd);
	close(s->fd);
	close(s->timer_fd);
	unlink(s->path);
	free(s->path);
	free(s);
}
