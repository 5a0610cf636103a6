/* The jailer's command line, parsed and validated before anything is made (internal to
 * src/jail). */
#ifndef VESSEL_JAIL_ARGS_H
#define VESSEL_JAIL_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "base/error.h"

#define JAIL_MAX_CGROUPS 64
#define JAIL_ID_MAX 64 /* Firecracker's limit on an instance id */

struct jail_args {
	const char *id, *exec_file, *base, *netns, *parent_cgroup;
	uid_t uid;
	gid_t gid;
	int cgroup_version; /* 1 or 2 */
	struct {
		char *file, *value;
	} cgroup[JAIL_MAX_CGROUPS];
	size_t ncgroup;
	bool has_fsize;
	rlim_t fsize, nofile;
	bool daemonize, new_pid_ns;
	int vmm_argc; /* what follows `--` */
	char **vmm_argv;
};

/* Fills a from argv (argv[0] is "jail"); a usage error names the option. */
int jail_args_parse(struct jail_args *a, int argc, char **argv, vs_err_t *err);
void jail_args_free(struct jail_args *a);
/* 1 to 64 ASCII letters, digits or '-', as Firecracker's jailer accepts. */
bool jail_id_valid(const char *id);

extern const char jail_usage[];

#endif
