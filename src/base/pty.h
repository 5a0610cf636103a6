/* Terminals handed over runc's console socket: the caller listens on a Unix socket, the
 * runtime connects and sends a pty master as SCM_RIGHTS with the text "/dev/ptmx" (what
 * podman's conmon and containerd's shim expect). The OCI runtime makes that pty inside the
 * container (oci/console.c); a VM-isolated container's host side makes one on the host and
 * its agent receives the guest runtime's (src/vmc/). */
#ifndef VESSEL_BASE_PTY_H
#define VESSEL_BASE_PTY_H

#include <stddef.h>

#include "base/error.h"

/* A connected stream to the console socket at path. */
int vs_console_connect(const char *path, vs_err_t *err);
/* A new pty (both ends O_NOCTTY, O_CLOEXEC), the window rows x cols unless both are 0;
 * the slave's name in name. */
int vs_pty_open(unsigned rows, unsigned cols, int *master, int *slave, char *name, size_t n,
		vs_err_t *err);
/* Sends master over sock as runc does. */
int vs_console_send(int sock, int master, vs_err_t *err);
/* The master a runtime sent over sock (a connected stream): the fd, or -1 with err. */
int vs_console_receive(int sock, vs_err_t *err);

#endif
