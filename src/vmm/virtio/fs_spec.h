/* `--fs tag=TAG,socket=PATH` (Cloud Hypervisor's spelling) and the config file's
 * {"tag": ..., "socket": ...}, parsed and checked before anything is opened. */
#ifndef VESSEL_VMM_VIRTIO_FS_SPEC_H
#define VESSEL_VMM_VIRTIO_FS_SPEC_H

#include <jansson.h>

#include "base/error.h"

#define FS_TAG_MAX 36	  /* virtio-fs config space: tag[36], NUL-padded, not terminated */
#define FS_SOCKET_MAX 107 /* sun_path without its NUL */

struct fs_spec {
	char tag[FS_TAG_MAX + 1];
	char socket[FS_SOCKET_MAX + 1];
};

/* Errors name the option (`tag: ...`); the caller prefixes `--fs SPEC`. */
int fs_spec_parse(const char *spec, struct fs_spec *out, vs_err_t *err);
/* Errors name the member (`tag: ...`). */
int fs_spec_from_json(json_t *obj, struct fs_spec *out, vs_err_t *err);

#endif
