/* The container's root filesystem: mounts, /dev, pivot_root, masked and
 * read-only paths. Runs in the container init, inside its new mount namespace.
 * Every destination is resolved inside the rootfs (openat2 RESOLVE_IN_ROOT), so a
 * symlink in an image can never redirect a mount onto the host. */
#ifndef VESSEL_OCI_MOUNTS_H
#define VESSEL_OCI_MOUNTS_H

#include <stdbool.h>
#include "base/error.h"
#include "base/inroot.h"
#include "oci/spec.h"

struct cgroup;

/* Without a mount namespace of its own the container gets its rootfs by chroot only:
 * refuses, naming the field, what would need mounting. */
int rootfs_check_shared_mount_ns(const struct spec *s, vs_err_t *err);
/* Before hooks: propagation, rootfs bind, every mount of the spec, devices, and
 * process.cwd made when missing. */
int rootfs_prepare(const struct spec *s, const struct cgroup *cg, bool in_userns,
		   const int *bind_sources, vs_err_t *err);
/* In the runtime, before the init enters a new user namespace, where a source only the
 * host's root may reach is out of its reach: each bind mount's source as a detached
 * copy (open_tree), idmapped when asked, *fds[i] for mounts[i] (-1 for the others), moved into place by
 * rootfs_prepare (bind_sources). */
int rootfs_open_bind_sources(const struct spec *s, int **fds, vs_err_t *err);
/* Are there idmapped mounts (made by rootfs_open_bind_sources, in any case)? */
bool rootfs_has_idmapped(const struct spec *s);
void rootfs_close_bind_sources(int *fds, size_t n);
/* Makes the rootfs the new / (pivot_root, or MS_MOVE + chroot with no_pivot; chroot
 * alone in the runtime's mount namespace). */
int rootfs_pivot(const struct spec *s, bool no_pivot, vs_err_t *err);
/* After pivot: masked paths, read-only paths, read-only root, rootfs propagation. */
int rootfs_finish(const struct spec *s, vs_err_t *err);

#endif
