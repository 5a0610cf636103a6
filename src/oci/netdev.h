/* linux.netDevices: host network interfaces moved into the container's network
 * namespace (and renamed) by the runtime, with one RTM_NEWLINK each, before the init
 * runs anything. When the namespace goes away the kernel returns physical devices
 * to the host's and destroys virtual ones. */
#ifndef VESSEL_OCI_NETDEV_H
#define VESSEL_OCI_NETDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "base/error.h"

struct netdev {
	char *host_name; /* key of linux.netDevices */
	char *name;	 /* name in the container (the host's when not given) */
};

/* lx.netDevices: needs a network namespace of the container's own (new_netns or path). */
int netdev_parse(json_t *lx, bool has_netns, struct netdev **out, size_t *n, vs_err_t *err);
void netdev_free(struct netdev *d, size_t n);

/* Moves every device into the network namespace netns_fd. */
int netdev_move_all(const struct netdev *d, size_t n, int netns_fd, vs_err_t *err);

#endif
