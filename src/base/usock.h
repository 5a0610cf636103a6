/* Listening Unix sockets that appear at their path only once they accept.
 *
 * bind() creates the socket file before listen() makes it accept, so a client that
 * waits for the file (as Firecracker's clients and our tests do) can connect in
 * between and be refused. These sockets are made under a private name and then
 * moved to their path, which is never replaced: a live socket there is an error. */
#ifndef VESSEL_BASE_USOCK_H
#define VESSEL_BASE_USOCK_H

#include <stdbool.h>

#include "base/error.h"

/* A socket listening at path (flags: SOCK_NONBLOCK and/or SOCK_CLOEXEC, backlog as for
 * listen). If replace_stale, a socket file at path that nobody accepts on (a leftover
 * of a process that is gone) is removed first. Returns the fd, or -1 with *err. */
int vs_unix_listen(const char *path, int flags, int backlog, bool replace_stale, vs_err_t *err);

#endif
