/* `--disk PATH[,ro][,id=NAME][,direct][,bw=RATE][,iops=N][,bw_burst=SIZE][,iops_burst=N]`,
 * parsed and checked before anything is opened. */
#ifndef VESSEL_VMM_VIRTIO_BLK_SPEC_H
#define VESSEL_VMM_VIRTIO_BLK_SPEC_H

#include <jansson.h>
#include <linux/virtio_blk.h>
#include <stdbool.h>

#include "base/error.h"
#include "base/ratelimit.h"
#include "vmm/config.h"

struct blk_spec {
	char *path;
	bool ro, direct;
	bool has_id;
	char id[VIRTIO_BLK_ID_BYTES + 1]; /* get-id's answer (not NUL-padded on the wire) */
	struct rate_limiter rl;
};

/* Errors name the option (`bw: not a rate`); the caller prefixes `--disk SPEC`. */
int blk_spec_parse(const char *spec, struct blk_spec *out, vs_err_t *err);
/* A Firecracker Drive object (config file, API): drive_id, path_on_host, is_read_only,
 * is_root_device, partuuid, cache_type, io_engine, rate_limiter. Errors name the member. */
int blk_spec_from_json(json_t *obj, struct blk_spec *out, vs_err_t *err);
void blk_spec_free(struct blk_spec *s);

/* A PartialDrive (PATCH /drives/{drive_id} once the microVM is started): drive_id, and
 * path_on_host (another file for the guest's disk) and/or rate_limiter. */
struct blk_patch {
	const char *path; /* NULL: the file stays; else borrowed from the body */
	bool has_rl;
	struct rl_patch rl;
};
/* Errors name the member; a body that changes nothing is refused too. */
int blk_patch_from_json(json_t *obj, struct blk_patch *out, vs_err_t *err);

#endif
