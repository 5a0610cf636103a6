/* Resolving a path inside a directory tree that someone else filled (a container's
 * rootfs, an image layer): openat2 with RESOLVE_IN_ROOT, so no `..`, absolute path or
 * symlink in the tree can lead outside it. The runtime's mounts and the image unpacker
 * share it. */
#ifndef VESSEL_BASE_INROOT_H
#define VESSEL_BASE_INROOT_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"

/* openat2(rootfd, path, flags | O_CLOEXEC) resolved inside rootfd, never through a /proc
 * magic link, plus the RESOLVE_* flags in resolve. Returns the fd, or -1 with errno. */
int vs_openat2_in_root(int rootfd, const char *path, int flags, uint64_t resolve);

/* Opens path inside the directory rootfd as O_PATH, never leaving it; with create,
 * makes missing directories (and the last component as a file when as_file); a dangling
 * symlink on the way is followed inside the root, as crun does. */
int open_in_root(int rootfd, const char *path, bool create, bool as_file, vs_err_t *err);

#endif
