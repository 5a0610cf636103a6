/* `--vsock cid=N,uds=PATH` and Firecracker's Vsock object ({guest_cid, uds_path,
 * vsock_id}), parsed and checked before anything is opened. */
#ifndef VESSEL_VMM_VIRTIO_VSOCK_SPEC_H
#define VESSEL_VMM_VIRTIO_VSOCK_SPEC_H

#include <jansson.h>
#include <stdint.h>

#include "base/error.h"

/* sun_path holds 108 bytes with the NUL; the guest's connections to port P go to
 * `<uds>_P`, so the path leaves room for `_4294967295`. */
#define VSOCK_UDS_MAX (108 - 1 - 11)

struct vsock_spec {
	uint32_t cid; /* 3 .. 2^32-2: 0-2 are reserved, -1 is VMADDR_CID_ANY */
	char uds[VSOCK_UDS_MAX + 1];
};

/* Errors name the option (`cid: ...`); the caller prefixes `--vsock SPEC`. */
int vsock_spec_parse(const char *spec, struct vsock_spec *out, vs_err_t *err);
/* Errors name the member (`guest_cid: ...`). */
int vsock_spec_from_json(json_t *obj, struct vsock_spec *out, vs_err_t *err);

#endif
