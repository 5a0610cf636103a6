/* /dev in the container: the default devices every container gets, the
 * symlinks programs expect, and linux.devices. */
#ifndef VESSEL_OCI_DEVICES_H
#define VESSEL_OCI_DEVICES_H

#include <stdbool.h>
#include <jansson.h>
#include "base/error.h"
#include "oci/spec.h"

/* Creates devices under <rootfs>/dev. With dev_mounted false (the image's own /dev)
 * only linux.devices are created. In a user namespace devices are bind-mounted from
 * the host, since mknod is refused there. */
int devices_setup(const struct spec *s, int rootfd, bool dev_mounted, bool in_userns,
		  vs_err_t *err);

/* Returns a copy of linux.resources (resources may be NULL) whose devices list ends with
 * the rules that keep the default devices and linux.devices usable, as runc does. */
json_t *devices_resources_with_defaults(json_t *resources, const struct spec_device *devs,
					size_t n_devs);

#endif
