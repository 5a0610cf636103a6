/* Images: the door of src/image/. `vessel image ...` and what the engine calls to
 * make a container's root (docs/images.md). */
#ifndef VESSEL_IMAGE_IMAGE_H
#define VESSEL_IMAGE_IMAGE_H

#include <stdbool.h>
#include <stdio.h>

#include "base/error.h"
#include "base/globals.h"

/* argv[0] is "image". Returns the exit status, or -1 with err set. */
int image_main(const struct vs_globals *g, int argc, char **argv, vs_err_t *err);

/* A container's copy-on-write root: the image ref's layers (from the store at
 * store_path; NULL: /var/lib/vessel) as overlayfs lowers, rwdir/upper and rwdir/work
 * (made when missing) as its own, mounted on target. Where overlayfs is refused the
 * layers are copied into target instead, with a warning; *copied says which. */
int image_mount_root(const char *store_path, const char *ref, const char *target, const char *rwdir,
		     bool *copied, vs_err_t *err);
/* The same as a plain copy, never overlayfs (a root that must be an ordinary tree). */
int image_copy_root(const char *store_path, const char *ref, const char *target, vs_err_t *err);
/* What a container changed in a root made by image_mount_root, one line per path:
 * `A /path` added, `C /path` changed, `D /path` deleted (docker diff's form), from
 * rwdir/upper against the image's layers. */
int image_diff(const char *store_path, const char *ref, const char *rwdir, FILE *out,
	       vs_err_t *err);
/* Unmounts a root made by image_mount_root (a copied root stays: the caller removes it). */
int image_umount_root(const char *target, vs_err_t *err);

#endif
