/* Starting a container's init: the runtime side of create and run. */
#ifndef VESSEL_OCI_LAUNCH_H
#define VESSEL_OCI_LAUNCH_H

#include <stdbool.h>
#include <sys/types.h>

#include "base/error.h"
#include "base/globals.h"
#include "oci/spec.h"
#include "oci/state.h"

struct cgroup;
struct seccomp_prog;

struct launch_opts {
	const char *id;
	const char *bundle; /* absolute */
	const char *pid_file;
	const char *console_socket;
	int console_fd; /* run's own terminal (a tty proxy), or -1 */
	int preserve_fds;
	bool no_pivot;
	bool use_fifo; /* create: the init waits on the exec fifo; run: on SYNC_START */
};

struct launch {
	struct spec *spec;
	struct container_state st;
	struct cgroup *cg;
	pid_t pid;
	int sync_fd;
	bool have_state;
};

/* Takes the id, makes the cgroup, clones the init into its namespaces and waits
 * until it is ready to start; writes state.json and the pid file. On failure
 * nothing is left behind: no state directory, cgroup or process. */
int launch_container(const struct vs_globals *g, const struct launch_opts *o, struct launch *l,
		     vs_err_t *err);
/* Kills whatever exists of a container and removes its cgroup and state. */
void launch_abort(struct launch *l);
void launch_release(struct launch *l);

/* --systemd-cgroup: linux.cgroupsPath "system.slice:prefix:name" (NULL: the defaults,
 * name the id) -> "/system.slice/prefix-name.scope", the directory systemd itself would
 * make; nested slices "a-b.slice" live under "a.slice". */
int launch_systemd_cgroup_path(const char *spec_path, const char *id, char **out, vs_err_t *err);

/* The state handed to hooks: OCI state JSON with status and pid. */
json_t *launch_hook_state(const char *id, const char *bundle, json_t *annotations,
			  const char *status, pid_t pid);

#endif
