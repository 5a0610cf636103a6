/* The agent's side of the OCI request (ops_msg.h): the guest's own runtime runs ps, pause,
 * resume, events --stats or update on the container, its stdout goes back as OUTPUT. */
#ifndef VESSEL_VMC_AGENT_OPS_H
#define VESSEL_VMC_AGENT_OPS_H

#include "base/error.h"
#include "oci/oci.h"
#include "vmc/proto.h"

/* Answers the OCI request f on the control connection fd: OUTPUT (when the command wrote
 * any) and OK, or ERROR. */
void vmc_agent_oci(int fd, const char *id, const struct vmc_frame *f);
/* agent.c: one of the runtime's commands, run in the agent with the guest's globals. */
int vmc_agent_runtime(int argc, char **argv, oci_command_fn fn, vs_err_t *err);

#endif
