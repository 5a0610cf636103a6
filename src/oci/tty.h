/* A terminal for `run`/`exec` without --console-socket: the container's pty master
 * comes back to vessel itself, which copies between it and the caller's terminal
 * (raw mode, window size kept in step), as runc does. */
#ifndef VESSEL_OCI_TTY_H
#define VESSEL_OCI_TTY_H

#include "base/error.h"

struct tty_proxy;

/* Returns the end to hand to the container process as its console socket. */
int tty_proxy_socket(struct tty_proxy **out, vs_err_t *err);
/* Takes the pty master the container sent (it is queued before the exec). */
int tty_proxy_receive(struct tty_proxy *t, vs_err_t *err);
int tty_proxy_master(const struct tty_proxy *t);
/* Copies what is readable on fd (0 or the master) to the other side; returns 0 at EOF. */
int tty_proxy_pump(struct tty_proxy *t, int fd);
void tty_proxy_resize(struct tty_proxy *t);
void tty_proxy_free(struct tty_proxy *t);

#endif
