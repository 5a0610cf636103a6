/* `vessel exec`: a new process in a running container, in all of its namespaces
 * and its cgroup, under the container's seccomp profile. */
#ifndef VESSEL_OCI_EXEC_H
#define VESSEL_OCI_EXEC_H

#include <stdbool.h>
#include "base/error.h"
#include "base/globals.h"
#include "oci/spec.h"

struct exec_opts {
	const char *id;
	struct spec_process *process; /* what to run; the caller owns it */
	const char *pid_file;
	const char *console_socket;
	int preserve_fds;
	bool detach;
};

/* Returns the process's exit status (or 0 when detached), -1 with err. */
int exec_in_container(const struct vs_globals *g, const struct exec_opts *o, vs_err_t *err);

#endif
