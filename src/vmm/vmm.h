/* The microVM monitor's door: `vessel vm ...`. */
#ifndef VESSEL_VMM_VMM_H
#define VESSEL_VMM_VMM_H

#include <sys/types.h>

#include "base/error.h"
#include "base/globals.h"

/* argv[0] is "vm". Returns the process exit status, or -1 with err set. */
int vmm_main(const struct vs_globals *g, int argc, char **argv, vs_err_t *err);

/* The default guest image's directory (vmlinuz, initrd.img): $VESSEL_IMAGES, else
 * <dir of vessel>/../images/out. Malloc'd, NULL without memory. */
char *vmm_default_image_dir(void);

/* One request to a running VMM's API on its Unix socket sock (Connection: close): the
 * HTTP status in *status, the body in *answer (malloc'd). For `vm migrate-send` and for
 * vessel-vm's update, which sizes a VM container's balloon. -1 with err: no answer. */
int vmm_api_call(const char *sock, const char *method, const char *path, const char *body,
		 int *status, char **answer, vs_err_t *err);

/* For the jailer (docs/jail.md), which execs `vessel VMM-ARGS` in place of itself: when
 * argv (argv[0] "vm") is `vm [--state-dir DIR] run|api ...`, the VM it will run, sized from
 * its --cpus/--memory, a --config-file (files opened inside root_fd, the jail's root, as
 * the jailed VMM will see them; -1: no root yet) or api's --max-machine, is checked against
 * its --overcommit and recorded in the host's inventory as this process under id.
 * *exec_argv (free the array, not its strings) is then what to exec: argv with
 * `--counted-on-host --max-machine <that size>`. Any other argv: 0, nothing recorded,
 * *exec_argv NULL. -1 with err: a bad argument or file, or the overcommit refusal. */
int vmm_jail_admit(int argc, char **argv, int root_fd, const char *id, char ***exec_argv,
		   vs_err_t *err);
/* The jail failed before its VMM started: the record goes. */
void vmm_jail_leave(void);
/* The jailer forked (--new-pid-ns, --daemonize): the record names its child, pid (in
 * proc_fd's pid namespace, a /proc opened before the pivot), which execs the VMM. */
int vmm_jail_moved(int proc_fd, pid_t pid, vs_err_t *err);

#endif
