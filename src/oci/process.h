/* The last steps before a container process becomes the user's program:
 * rlimits, identity with capabilities, and execve with a PATH lookup. */
#ifndef VESSEL_OCI_PROCESS_H
#define VESSEL_OCI_PROCESS_H

#include "base/error.h"
#include "oci/spec.h"

int process_set_rlimits(const struct spec_process *p, vs_err_t *err);
/* caps_prepare -> setgroups/setgid/setuid -> caps_finish. set_groups is false in a user
 * namespace whose setgroups is denied. */
int process_set_identity(const struct spec_process *p, bool set_groups, vs_err_t *err);
/* Marks fds 0..2+preserve_fds to survive exec and every other fd close-on-exec. */
int process_prepare_fds(int preserve_fds, vs_err_t *err);
/* Looks args[0] up in the process's PATH and executes it; returns only on failure. */
int process_exec(const struct spec_process *p, vs_err_t *err);

#endif
