/* Entering a pid namespace for one child only. setns(CLONE_NEWPID) changes where
 * the caller's next children are born; the runtime puts that back right after the
 * clone, so nothing else it forks (hooks, a sanitizer's helper) lands in the container. */
#ifndef VESSEL_OCI_NSENTER_H
#define VESSEL_OCI_NSENTER_H

#include "base/error.h"

/* Saves our own pid namespace in *own, then enters ns_fd for the next child. */
int ns_enter_pid_for_child(int ns_fd, int *own, vs_err_t *err);
/* Puts *own back (if saved) and closes it. */
int ns_restore_pid_for_children(int *own, vs_err_t *err);

#endif
