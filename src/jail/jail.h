/* `vessel jail`: Firecracker's jailer. Puts a VMM binary into a chroot of its own
 * (<base>/<exec-name>/<id>/root) with only the KVM, TUN and userfaultfd device nodes, in
 * a cgroup with the given limits, its own mount namespace (and optionally pid namespace),
 * a given network namespace, rlimits, no inherited fds or environment, and the given
 * unprivileged uid/gid; then execs it. docs/jail.md. */
#ifndef VESSEL_JAIL_H
#define VESSEL_JAIL_H

#include "base/error.h"
#include "base/globals.h"

/* Returns only on failure: -1 with err, and what it made undone when the failure came
 * before the pivot into the jail (docs/jail.md). With --new-pid-ns or --daemonize the
 * parent exits 0 once the child's pid is in the jail's /<exec-name>.pid. */
int jail_main(const struct vs_globals *g, int argc, char **argv, vs_err_t *err);

#endif
