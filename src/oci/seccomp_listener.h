/* linux.seccomp.listenerPath: the runtime sends the notify fd of a container process's
 * filter to the listener's unix socket, with the containerProcessState JSON of the
 * runtime spec (as runc does), then forgets it. */
#ifndef VESSEL_OCI_SECCOMP_LISTENER_H
#define VESSEL_OCI_SECCOMP_LISTENER_H

#include <sys/types.h>
#include <jansson.h>

#include "base/error.h"
#include "oci/seccomp.h"

/* Takes the notify fd from the child over sync_fd (SYNC_SECCOMP) and sends it to the
 * spec's listener with state (the container's OCI state) and pid. */
int seccomp_listener_forward(const struct seccomp_spec *s, int sync_fd, json_t *state, pid_t pid,
			     vs_err_t *err);

#endif
