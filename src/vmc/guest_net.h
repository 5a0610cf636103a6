/* The guest side of a VM-isolated container's network: the agent moves the guest's
 * virtio-net interfaces into the container's network namespace and gives them the names,
 * MTUs, addresses and routes the container's namespace has on the host (CONFIG's "net"),
 * by rtnetlink: the guest has no iproute2. */
#ifndef VESSEL_VMC_GUEST_NET_H
#define VESSEL_VMC_GUEST_NET_H

#include <sys/types.h>

#include <jansson.h>

#include "base/error.h"

/* j is untrusted (vmc_net_from_json checks it). pid is the created container's init, whose
 * network namespace gets the interfaces (each found by the MAC the host gave its virtio-net
 * device); its loopback comes up too. Before start: the process runs with its network. */
int vmc_guest_net_setup(json_t *j, pid_t pid, vs_err_t *err);

#endif
