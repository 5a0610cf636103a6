/* VM-isolated containers: the same OCI bundle and runc command line, the container in
 * its own microVM (docs/vm-containers.md). The host side is called by the OCI commands
 * for a container whose level is vm; the agent is the microVM's init. */
#ifndef VESSEL_VMC_VMC_H
#define VESSEL_VMC_VMC_H

#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>

#include "base/error.h"
#include "base/globals.h"

struct container_state;

/* The annotation that asks for a microVM, and that the state record carries. */
#define VMC_ANNOTATION "io.vessel.isolation"

/* Under the name vessel-vm (g->isolation_vm) or with the annotation in config.json. */
bool vmc_wanted(const struct vs_globals *g, const char *bundle);
/* The state record is a VM-isolated container's. */
bool vmc_is_vm(const struct container_state *st);

struct vmc_create_opts {
	const char *id;
	const char *bundle; /* absolute */
	const char *pid_file;
	bool detach; /* create: the VMM leaves our session */
	/* process.terminal: the master of the host's pty goes there; without one, run
	 * (not detached) relays the guest's terminal to its own stdio */
	const char *console_socket;
};
/* Starts virtiofsd and the VMM (the container's pid) and returns once the agent has
 * created the container; *pid is the VMM's. Leaves nothing behind on failure. */
int vmc_create(const struct vs_globals *g, const struct vmc_create_opts *o, pid_t *pid,
	       vs_err_t *err);
/* runc's run for a VM-isolated container: the container's exit status. */
int vmc_run(const struct vs_globals *g, const struct vmc_create_opts *o, bool keep, vs_err_t *err);
int vmc_start(const struct container_state *st, vs_err_t *err);
int vmc_kill(const struct container_state *st, int sig, vs_err_t *err);
struct vmc_exec_opts {
	char **options; /* "--NAME=VALUE" for the guest's exec (env, cwd, user, caps, ...) */
	char **command; /* NULL-terminated, without a process_file */
	const char *process_file;
	const char *pid_file; /* the host relay's pid (docs/vm-containers.md) */
	bool detach;
	bool tty;		    /* -t */
	const char *console_socket; /* with a terminal, the host pty's master goes there */
};
/* runc's exec in the container in its microVM: the process's exit status (128+N for signal
 * N), or 0 once it started with detach; -1 with err. */
int vmc_exec(const struct container_state *st, const struct vmc_exec_opts *o, vs_err_t *err);
/* runc's ps, pause/resume, events --stats, update, done by the guest's runtime on the
 * container's cgroup in the guest (ops.c). ps writes the guest's pids (json: a list of
 * numbers) or its ps(1) table to stdout; set_paused leaves the record to the caller;
 * stats is the event's data object; update also gives the CPU limits to the VMM's host
 * cgroup (hostcg.h) and saves st. */
int vmc_ps(const struct container_state *st, bool json, char *const *ps_args, vs_err_t *err);
int vmc_set_paused(const struct container_state *st, bool pause, vs_err_t *err);
json_t *vmc_stats(const struct container_state *st, vs_err_t *err);
int vmc_update(struct container_state *st, json_t *resources, vs_err_t *err);
/* Removes the VMM's sockets and their directory (delete, once the VMM is gone). */
void vmc_cleanup(const struct container_state *st);
/* What a VM-isolated container can't do yet: a clear error naming the command. */
int vmc_unsupported(const struct container_state *st, const char *cmd, vs_err_t *err);

/* `vessel agent`: the guest side, run as the microVM's init. */
int vmc_agent_main(const struct vs_globals *g, int argc, char **argv, vs_err_t *err);

#endif
