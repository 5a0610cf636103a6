/* The child side every container process shares, the init and an exec'd process alike:
 * joining namespaces in one order, then the identity tail up to execve.
 *
 *   process_join_namespaces -> (init: rootfs, console, ...) -> process_setup
 *   -> (init: ready, wait for start, startContainer hooks) -> process_finish
 *
 * Everything vessel itself does (fds, cwd, PATH lookup) happens in process_setup before
 * the user's seccomp filter goes in, so no profile can make vessel's own work fail: the
 * filter is installed in process_setup only without noNewPrivileges (it needs
 * CAP_SYS_ADMIN then, as runc does) or with a notify listener (its fd goes to the
 * runtime, which is gone once the init waits for start), otherwise in process_finish
 * right before execve. */
#ifndef VESSEL_OCI_PROCESS_H
#define VESSEL_OCI_PROCESS_H

#include <limits.h>

#include "base/error.h"
#include "oci/seccomp.h"
#include "oci/spec.h"

/* Joins every fd of ns_fd that is >= 0 (NS_PID is the parent's business and skipped):
 * the user namespace first (it owns the others), mount last, so paths opened before it
 * are the caller's. */
int process_join_namespaces(const int ns_fd[NS_COUNT], vs_err_t *err);

struct process_run {
	const struct spec_process *p;
	const struct seccomp_prog *seccomp;
	int preserve_fds;
	int sync_fd; /* to the runtime: a seccomp notify fd goes there (SYNC_SECCOMP) */
	bool seccomp_installed;
	char exe[PATH_MAX]; /* args[0] resolved by process_setup */
	char **env;	    /* process.env, with HOME added when it has none */
};

/* rlimits, scheduler and ioPriority, fds 0..2+preserve_fds kept and the rest close-on-exec, cwd,
 * args[0] looked up in PATH, HOME from /etc/passwd when process.env has none, the seccomp filter
 * (without noNewPrivileges), then uid/gid/groups and capabilities. */
int process_setup(struct process_run *r, vs_err_t *err);
/* noNewPrivileges, the seccomp filter (with it), execve; returns only on failure. */
int process_finish(struct process_run *r, vs_err_t *err);

#endif
