/* The host's control connection to a VM-isolated container's agent: Firecracker's CONNECT
 * handshake on the VMM's vsock socket to VMC_PORT_CONTROL, then request frames (host.c's
 * START and KILL, exec_host.c's EXEC, which goes on with the process's stdio and the
 * signals exec forwards). */
#ifndef VESSEL_VMC_CONTROL_H
#define VESSEL_VMC_CONTROL_H

#include <stdint.h>

#include "base/error.h"
#include "vmc/proto.h"

struct container_state;

/* The connected stream (30 s receive timeout), or -1 with err. */
int vmc_control_open(const struct container_state *st, vs_err_t *err);
/* The agent's answer to a request of type: 0 for OK, -1 with err for ERROR (its text made
 * printable) or anything else. Frames after the answer stay buffered in rd. */
int vmc_control_answer(int fd, struct vmc_reader *rd, uint8_t type, vs_err_t *err);

#endif
