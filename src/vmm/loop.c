#include "vmm/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 16

struct handler {
	int fd;
	loop_fn fn;
	void *opaque;
	struct handler *next;
};

struct loop {
	int epfd;
	struct handler *handlers;
};

struct loop *loop_new(vs_err_t *err)
{
	struct loop *l = calloc(1, sizeof(*l));
	if (!l) {
		vs_err(err, ENOMEM, "event loop");
		return NULL;
	}
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		vs_err(err, errno, "epoll_create1");
		free(l);
		return NULL;
	}
	return l;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	while (l->handlers) {
		struct handler *h = l->handlers;
		l->handlers = h->next;
		free(h);
	}
	close(l->epfd);
	free(l);
}

int loop_add(struct loop *l, int fd, uint32_t events, loop_fn fn, void *opaque, vs_err_t *err)
{
	struct handler *h = calloc(1, sizeof(*h));
	if (!h)
		return vs_err(err, ENOMEM, "event loop");
	*h = (struct handler){fd, fn, opaque, l->handlers};
	struct epoll_event ev = {.events = events, .data.ptr = h};
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = errno;
		free(h);
		return vs_err(err, e, "epoll_ctl add fd %d", fd);
	}
	l->handlers = h;
	return 0;
}

void loop_del(struct loop *l, int fd)
{
	for (struct handler **p = &l->handlers; *p; p = &(*p)->next) {
		if ((*p)->fd != fd)
			continue;
		struct handler *h = *p;
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
		*p = h->next;
		free(h);
		return;
	}
}

static bool registered(const struct loop *l, const struct handler *h)
{
	for (const struct handler *p = l->handlers; p; p = p->next)
		if (p == h)
			return true;
	return false;
}

int loop_run_once(struct loop *l, int timeout_ms, vs_err_t *err)
{
	struct epoll_event evs[LOOP_MAX_EVENTS];
	int n = epoll_wait(l->epfd, evs, LOOP_MAX_EVENTS, timeout_ms);
	if (n < 0) {
		if (errno == EINTR)
			return 0;
		return vs_err(err, errno, "epoll_wait");
	}
	for (int i = 0; i < n; i++) {
		struct handler *h = evs[i].data.ptr;
		/* an earlier handler in this batch may have removed this one */
		if (registered(l, h))
			h->fn(h->opaque, evs[i].events);
	}
	return n;
}
