/* Options shared by create and run (runc's names). */
#ifndef VESSEL_OCI_CREATE_ARGS_H
#define VESSEL_OCI_CREATE_ARGS_H

#include <limits.h>
#include <stdbool.h>
#include "oci/launch.h"

struct create_args {
	struct launch_opts o;
	char bundle[PATH_MAX];
	bool detach, keep;
};

/* Returns 0 when parsed, 1 when --help was printed, -1 with err. */
int create_args_parse(const char *cmd, int argc, char **argv, struct create_args *a,
		      vs_err_t *err);

#endif
