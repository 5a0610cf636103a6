/* The host side of a VM-isolated container's network: the network namespace podman (CNI,
 * netavark) made for the container reaches the guest through a tap in that namespace, the
 * Kata way. The guest's virtio-net takes the veth's MAC and addresses (the guest "is" the
 * veth), and tc redirects every frame between the veth and the tap, both ways, so `-p` and
 * traffic between containers work unchanged (docs/vm-containers.md, Networking). */
#ifndef VESSEL_VMC_NET_H
#define VESSEL_VMC_NET_H

#include <jansson.h>

#include "base/error.h"
#include "vmc/net_msg.h"

struct vmc_host_net {
	int netns_fd; /* -1: the container has no network of podman's: as runc (loopback) */
	char netns_path[4096];
	struct vmc_net net; /* what the guest gets, in CONFIG */
};

/* From config.json: a network namespace with a path is read (its non-loopback interfaces,
 * their addresses and routes); hn->netns_fd is -1 when there is none, or when the
 * namespace has no interface but loopback (podman's --network none). */
int vmc_net_probe(json_t *config, struct vmc_host_net *hn, vs_err_t *err);
void vmc_net_release(struct vmc_host_net *hn);
/* The tap in the namespace that stands for interface i (the VMM creates it: --net tap=). */
void vmc_net_tap_name(size_t i, char out[IFNAMSIZ]);
/* The calling thread joins the container's network namespace: the VMM's taps are made
 * there, and die with it. */
int vmc_net_enter(const struct vmc_host_net *hn, vs_err_t *err);
/* Once the VMM made its taps: each tap takes the MTU of its interface, and tc's ingress
 * qdiscs with a u32 filter redirect the interface's frames to the tap and back. */
int vmc_net_connect(const struct vmc_host_net *hn, vs_err_t *err);
/* delete: in the namespace at netns_path (if it is still there), the taps and the
 * ingress qdiscs go. Best effort: the namespace is podman's to remove. */
void vmc_net_teardown(const char *netns_path);

#endif
