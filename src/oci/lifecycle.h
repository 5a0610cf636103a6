/* What several commands do to an existing container: signal it, wait for it to
 * die, and take it down (cgroup, poststop hooks, state). */
#ifndef VESSEL_OCI_LIFECYCLE_H
#define VESSEL_OCI_LIFECYCLE_H

#include "base/error.h"
#include "oci/state.h"

/* "TERM", "SIGTERM", "15", "sigkill" ... -> signal number. */
int lifecycle_parse_signal(const char *s, int *sig, vs_err_t *err);
/* Waits up to timeout_ms for the container's init to be gone. */
bool lifecycle_wait_gone(const struct container_state *st, int timeout_ms);
/* SIGKILLs the container's init if the recorded pid still is that process (pid and
 * start time), and waits up to timeout_ms for it to be gone. */
int lifecycle_kill_init(const struct container_state *st, int timeout_ms, vs_err_t *err);
/* The container's processes, sorted: those of its cgroup; for a rootless container that
 * got none, those of the init's pid namespace (the init alone when it shares ours).
 * Caller frees *pids. */
struct cgroup;
int lifecycle_pids(const struct container_state *st, struct cgroup *cg, pid_t **pids,
		   size_t *n, vs_err_t *err);
/* Removes the cgroup, runs poststop hooks (failures only warn), removes the state. */
int lifecycle_destroy(struct container_state *st, vs_err_t *err);

#endif
