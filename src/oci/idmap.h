/* User namespace id maps: written for the container's own user namespace, and made into
 * a throwaway user namespace that only carries a mapping for an idmapped mount
 * (mount_setattr MOUNT_ATTR_IDMAP takes the mapping from a user namespace fd). */
#ifndef VESSEL_OCI_IDMAP_H
#define VESSEL_OCI_IDMAP_H

#include <sys/types.h>

#include "base/error.h"
#include "oci/spec.h"

/* Writes /proc/PID/<file> ("uid_map" or "gid_map") in one write. */
int idmap_write(pid_t pid, const char *file, const struct spec_id_mapping *m, size_t n,
		vs_err_t *err);
/* The maps of the container's own user namespace, for its init pid. Root of the runtime's
 * namespace writes them itself. A rootless runtime may write only a map of its own id
 * (the kernel's rule; for gids only once setgroups is denied), and goes through
 * newuidmap / newgidmap (setuid helpers that check /etc/subuid and /etc/subgid) for any
 * other map, as runc and crun do. */
int idmap_write_userns(pid_t pid, const struct spec_id_mapping *uids, size_t n_uids,
		       const struct spec_id_mapping *gids, size_t n_gids, vs_err_t *err);
/* A new user namespace with these maps, as an fd (its process is gone already). */
int idmap_userns_open(const struct spec_id_mapping *uids, size_t n_uids,
		      const struct spec_id_mapping *gids, size_t n_gids, vs_err_t *err);

#endif
