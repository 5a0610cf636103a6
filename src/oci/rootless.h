/* Running without the host's root: what changes, decided in one place.
 *
 * vessel is rootless when its effective uid is not 0, or when it is 0 only inside a user
 * namespace that does not map host root (podman's rootless mode runs the runtime as root
 * of the user's namespace). Rootless, it keeps its state under $XDG_RUNTIME_DIR and runs
 * a container without a cgroup of its own when it cannot make one (see
 * docs/runtime-state.md, "Rootless"). */
#ifndef VESSEL_OCI_ROOTLESS_H
#define VESSEL_OCI_ROOTLESS_H

#include <stdbool.h>

#include "base/error.h"

bool rootless(void);
/* The state root when no --root is given: /run/vessel for root, $XDG_RUNTIME_DIR/vessel
 * for a rootless caller (as runc uses $XDG_RUNTIME_DIR/runc). Caller frees *out. */
int rootless_state_root(char **out, vs_err_t *err);

#endif
