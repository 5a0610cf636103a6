/* A copy-on-write root: overlayfs of read-only layers and a per-container upper. */
#ifndef VESSEL_IMAGE_OVERLAY_H
#define VESSEL_IMAGE_OVERLAY_H

#include <stddef.h>

#include "base/error.h"

/* lowers[0] is the topmost (nearest) layer. index=off: the layers are shared between
 * mounts, which overlayfs's index would tie to one upper. Past the mount option's one
 * page, the new mount API takes one `lowerdir+` per call (Linux >= 6.8); older kernels
 * get one `lowerdir=` string, relative to the store's layers directory (layers_dir) to
 * fit more. */
int overlay_mount(const char *const *lowers, size_t n, const char *layers_dir, const char *upper,
		  const char *work, const char *target, vs_err_t *err);

/* The old kernels' way, which overlay_mount falls back to: one `lowerdir=` option of the
 * lowers relative to layers_dir (the cwd while mounting); upper, work and target must
 * be absolute. */
int overlay_mount_legacy(const char *const *lowers, size_t n, const char *layers_dir,
			 const char *upper, const char *work, const char *target, vs_err_t *err);

/* Where overlayfs is refused (no kernel support, an upper on overlayfs or on a file
 * system without whiteouts, a user namespace without the right): the layers copied into
 * target, bottom first, whiteouts applied. */
int overlay_copy(const char *const *lowers, size_t n, const char *target, vs_err_t *err);

#endif
