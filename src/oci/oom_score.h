/* process.oomScoreAdj: the container init's /proc/PID/oom_score_adj, written by the
 * runtime before the init runs anything.
 *
 * Raising the value always works. Lowering it below the floor the runtime inherited
 * (the kernel's oom_score_adj_min) needs CAP_SYS_RESOURCE in the initial user namespace,
 * which root in a container, a rootless runtime or a trimmed bounding set lacks: the
 * kernel says EACCES. vessel then sets the lowest value the kernel does allow and warns,
 * instead of failing the container (runc and crun fail it; docs/kubernetes.md says why
 * vessel does not: the CRI plugin's pod sandboxes ask for -998). */
#ifndef VESSEL_OCI_OOM_SCORE_H
#define VESSEL_OCI_OOM_SCORE_H

#include <sys/types.h>

#include "base/error.h"

/* Writes want into pid's oom_score_adj; when the kernel refuses it as too low, the
 * lowest accepted value between want and pid's current one. *got: the value set. */
int oom_score_apply(pid_t pid, int want, int *got, vs_err_t *err);

#endif
