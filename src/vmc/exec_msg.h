/* The EXEC request of the agent protocol: what the host's `vessel-vm exec` asks the guest
 * to run, as a JSON payload, and the runtime command line the agent turns it into (the
 * guest's own `vessel exec`, so there is one exec, src/oci's). */
#ifndef VESSEL_VMC_EXEC_MSG_H
#define VESSEL_VMC_EXEC_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/error.h"

/* {"options": ["--env=K=V", ...], "command": [ARG, ...], "process": {...},
 *  "terminal": true} */
struct vmc_exec_msg {
	char **options; /* each "--NAME[=VALUE]", NULL-terminated */
	char **command; /* NULL-terminated; empty with a process */
	char *process;	/* process.json's text, or NULL */
	bool terminal;	/* a pty, its master relayed by the agent */
};

#define VMC_EXEC_MAX_ARGS 1024

/* The payload (malloc'd, its length in *len). process may be NULL; it is not consumed.
 * terminal: a pty for the process (with a process, its "terminal" must say the same). */
char *vmc_exec_msg_build(char *const *options, char *const *command, json_t *process, bool terminal,
			 size_t *len, vs_err_t *err);
/* Checks everything: strings only, options of the guest's exec that the host may pass (no
 * --detach, --pid-file, --process, --tty, --console-socket, --preserve-fds: the agent owns
 * those), a command or a process but not both, at most VMC_EXEC_MAX_ARGS of each, terminal a
 * boolean that a process's own "terminal" agrees with. */
int vmc_exec_msg_parse(const uint8_t *payload, size_t len, struct vmc_exec_msg *m, vs_err_t *err);
/* exec --detach --pid-file PID_FILE [--process PROCESS_FILE] [[--tty] --console-socket
 * CONSOLE] OPTIONS... ID COMMAND..., NULL-terminated, *argc set (--tty for the command form
 * with a terminal; the console socket only then); the strings are m's and the arguments'
 * (free the array only). */
char **vmc_exec_argv(const struct vmc_exec_msg *m, const char *id, const char *pid_file,
		     const char *process_file, const char *console, int *argc, vs_err_t *err);
void vmc_exec_msg_release(struct vmc_exec_msg *m);

#endif
