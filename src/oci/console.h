/* process.terminal: a pty made inside the container, its master handed to the
 * caller over --console-socket (SCM_RIGHTS), exactly as runc does (base/pty.h: the
 * runtime connects to the socket before the init exists). */
#ifndef VESSEL_OCI_CONSOLE_H
#define VESSEL_OCI_CONSOLE_H

#include <stdbool.h>
#include "base/error.h"
#include "oci/spec.h"

/* In the init after pivot_root (or an exec'd process after joining the mount
 * namespace): opens a pty, sends its master over sock, binds the slave to /dev/console
 * (the init only) and makes it the controlling terminal and stdio. */
int console_setup(int sock, const struct spec_process *p, bool bind_console, vs_err_t *err);

#endif
