/* What `run` and `exec` do once the container process exists: learn whether its
 * execve worked, then wait for it, forwarding signals and the terminal. */
#ifndef VESSEL_OCI_WAITLOOP_H
#define VESSEL_OCI_WAITLOOP_H

#include <sys/types.h>
#include "base/error.h"

struct tty_proxy;

/* The process closes its end of the sync socket when execve succeeds (close-on-exec);
 * a failed exec sends its error first. */
int waitloop_exec_result(int sync_fd, vs_err_t *err);
/* Blocks the signals to forward; call before the process can exit, so no SIGCHLD is lost. */
void waitloop_block_signals(void);
/* Forwards signals to pid (and pumps the tty) until it exits; returns its status as a
 * shell would: the exit code, or 128 + the signal. */
int waitloop_forward(pid_t pid, struct tty_proxy *tty, vs_err_t *err);
/* Written to a temporary name and renamed: a reader never sees a partial pid. */
int waitloop_write_pid_file(const char *path, pid_t pid, vs_err_t *err);

#endif
