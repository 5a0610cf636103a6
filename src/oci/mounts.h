/* The container's root filesystem: mounts, /dev, pivot_root, masked and
 * read-only paths. Runs in the container init, inside its new mount namespace.
 * Every destination is resolved inside the rootfs (openat2 RESOLVE_IN_ROOT), so a
 * symlink in an image can never redirect a mount onto the host. */
#ifndef VESSEL_OCI_MOUNTS_H
#define VESSEL_OCI_MOUNTS_H

#include <stdbool.h>
#include "base/error.h"
#include "oci/spec.h"

struct cgroup;

/* Without a mount namespace of its own the container gets its rootfs by chroot only:
 * refuses, naming the field, what would need mounting. */
int rootfs_check_shared_mount_ns(const struct spec *s, vs_err_t *err);
/* Before hooks: propagation, rootfs bind, every mount of the spec, devices, and
 * process.cwd made when missing. */
int rootfs_prepare(const struct spec *s, const struct cgroup *cg, bool in_userns,
		   vs_err_t *err);
/* Makes the rootfs the new / (pivot_root, or MS_MOVE + chroot with no_pivot; chroot
 * alone in the runtime's mount namespace). */
int rootfs_pivot(const struct spec *s, bool no_pivot, vs_err_t *err);
/* After pivot: masked paths, read-only paths, read-only root, rootfs propagation. */
int rootfs_finish(const struct spec *s, vs_err_t *err);

/* Opens path inside the directory rootfd as O_PATH, never leaving it; with create,
 * makes missing directories (and the last component as a file when as_file). */
int open_in_root(int rootfd, const char *path, bool create, bool as_file, vs_err_t *err);

#endif
