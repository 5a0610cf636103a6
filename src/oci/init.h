/* The container's init, from the moment it is cloned into its namespaces until
 * it executes the user's program. Runs in the child; never returns. */
#ifndef VESSEL_OCI_INIT_H
#define VESSEL_OCI_INIT_H

#include <stdbool.h>
#include "oci/launch.h"

struct init_ctx {
	const struct spec *s;
	const struct launch_opts *o;
	const struct cgroup *cg;
	const struct seccomp_prog *seccomp;
	int sync_fd;
	int fifo_fd;	/* O_PATH of the exec fifo, or -1 */
	int console_fd; /* connected --console-socket, or -1 */
	const int *bind_sources; /* rootfs_open_bind_sources, or NULL */
	bool hooks_round;
	bool join_cgroup;  /* the init moves itself into its cgroup (else the runtime does) */
	bool born_in_v2;   /* cloned into its cgroup2 directory already */
};

_Noreturn void init_run(const struct init_ctx *c);

#endif
