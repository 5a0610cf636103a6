/* Protection against the runc CVE-2019-5736 class: a container process that gets
 * hold of /proc/<pid>/exe of a vessel process must never be able to write the vessel
 * binary on the host. Commands that start container processes first re-execute vessel
 * from a read-only view of itself, so every process they fork has that view as its
 * exe: a read-only bind mount of the binary (no copy, pages shared with the page
 * cache), or, where mounts are not allowed, a sealed memfd copy. */
#ifndef VESSEL_OCI_SELFEXE_H
#define VESSEL_OCI_SELFEXE_H

#include <stdbool.h>
#include "base/error.h"

/* Is /proc/self/exe on a read-only mount, or a memfd sealed against writes? */
bool selfexe_is_sealed(void);
/* Re-executes argv from a read-only view of /proc/self/exe unless it is one already.
 * Returns only on failure. */
int selfexe_reexec_sealed(char **argv, vs_err_t *err);
/* Waits for the thread that releases the view of the binary we were re-executed from:
 * call before cloning, so that no thread of ours can hold a libc lock in the child. */
void selfexe_settle(void);

#endif
