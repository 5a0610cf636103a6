/* The host's control connection to a VM-isolated container's agent: Firecracker's CONNECT
 * handshake on the VMM's vsock socket to VMC_PORT_CONTROL, then request frames (host.c's
 * START and KILL, exec_host.c's EXEC, which goes on with the process's stdio and the
 * signals exec forwards). */
#ifndef VESSEL_VMC_CONTROL_H
#define VESSEL_VMC_CONTROL_H

#include <stdint.h>

#include <jansson.h>

#include "base/error.h"
#include "vmc/proto.h"

struct container_state;

/* A memory limit's VM is the limit plus this, for the guest kernel, its page cache and the
 * agent (docs/vm-containers.md, Resources). */
#define VMC_MEM_OVERHEAD_MIB 128

/* The VMM's config (a Firecracker config file) in the container's directory, and its API
 * socket in the sockets directory. */
#define VMC_VM_CONFIG "vm.json"
#define VMC_API_SOCKET "api.sock"

/* The container's VMM sockets directory (VMC_SOCKET_ROOT/...), from its record: 0, or -1
 * when the record names none of ours. */
int vmc_sockets_dir(const struct container_state *st, char out[static 64]);

/* update's memory limit (resources' memory.limit; none: nothing to do) as the balloon of
 * the running VM: what the VM has beyond limit + VMC_MEM_OVERHEAD_MIB is given back to
 * the host, and a higher limit (or none, -1) takes it back, up to the boot RAM. */
int vmc_balloon_update(const struct container_state *st, json_t *resources, vs_err_t *err);

/* The connected stream (30 s receive timeout), or -1 with err. */
int vmc_control_open(const struct container_state *st, vs_err_t *err);
/* The agent's answer to a request of type: 0 for OK, -1 with err for ERROR (its text made
 * printable) or anything else. Frames after the answer stay buffered in rd. */
int vmc_control_answer(int fd, struct vmc_reader *rd, uint8_t type, vs_err_t *err);

#endif
