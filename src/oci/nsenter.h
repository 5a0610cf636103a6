/* Cloning a child into a pid namespace that exists already. setns(CLONE_NEWPID) changes
 * where the caller's next children are born, and only those: the runtime puts that back
 * right after the clone, so nothing else it forks (hooks, a sanitizer's helper) lands in
 * the container.
 *
 * A rootless runtime can do neither: entering a pid namespace owned by the container's
 * user namespace needs that user namespace first (for good), and going back to its own
 * needs rights over the host's. There a short-lived helper enters both and clones the
 * child as the runtime's own (CLONE_PARENT), as runc's nsexec does with its middle
 * process. */
#ifndef VESSEL_OCI_NSENTER_H
#define VESSEL_OCI_NSENTER_H

#include <linux/sched.h>
#include <sys/types.h>

#include "base/error.h"

/* clone3(ca) with the child born in pid_ns_fd (-1: ours, a plain clone3). user_ns_fd
 * (or -1) is the user namespace owning it, which the child is then in already. Returns
 * as clone3 does, 0 in the child and its pid in the caller; -1 with err (and errno). */
pid_t ns_clone_in_pid_ns(struct clone_args *ca, int pid_ns_fd, int user_ns_fd, vs_err_t *err);

#endif
