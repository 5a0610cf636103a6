/* The VMM's main thread: an epoll loop that devices hook their fds into (the
 * console's stdin now, virtio queue eventfds and TAP later). Single-threaded:
 * handlers run on the main thread, one at a time. */
#ifndef VESSEL_VMM_LOOP_H
#define VESSEL_VMM_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"

struct loop;

/* events are EPOLLIN/EPOLLOUT/EPOLLHUP... as epoll reports them */
typedef void (*loop_fn)(void *opaque, uint32_t events);

struct loop *loop_new(vs_err_t *err);
void loop_free(struct loop *l);

/* One handler per fd. Returns -1 with err (EPERM: the fd cannot be polled, e.g. a
 * regular file). */
int loop_add(struct loop *l, int fd, uint32_t events, loop_fn fn, void *opaque, vs_err_t *err);
void loop_del(struct loop *l, int fd);

/* Waits up to timeout_ms (-1: no limit) and runs the handlers of ready fds.
 * Returns the number run, or -1 with err. */
int loop_run_once(struct loop *l, int timeout_ms, vs_err_t *err);

#endif
