/* Protection against the runc CVE-2019-5736 class: a container process that gets
 * hold of /proc/<pid>/exe of a vessel process must never reach the vessel binary
 * on the host. Commands that start container processes first re-execute vessel
 * from a sealed memfd, so every process they fork has the memfd as its exe. */
#ifndef VESSEL_OCI_SELFEXE_H
#define VESSEL_OCI_SELFEXE_H

#include <stdbool.h>
#include "base/error.h"

/* Is /proc/self/exe a memfd sealed against writes? */
bool selfexe_is_sealed(void);
/* Re-executes argv from a sealed copy of /proc/self/exe unless already sealed.
 * Returns only on failure. */
int selfexe_reexec_sealed(char **argv, vs_err_t *err);

#endif
