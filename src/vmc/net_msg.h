/* What the guest's interfaces must look like: the container's network namespace on the host
 * as the agent receives it, under "net" in the CONFIG frame (docs/vm-containers.md). The
 * host writes it from what the kernel told it; the agent parses it as hostile input, every
 * value bounded, before any of it reaches the guest's kernel. */
#ifndef VESSEL_VMC_NET_MSG_H
#define VESSEL_VMC_NET_MSG_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/error.h"

#define VMC_NET_MAX_IFACES 4
#define VMC_NET_MAX_ADDRS 8
#define VMC_NET_MAX_ROUTES 32
#define VMC_NET_MIN_MTU 68 /* IPv4's minimum; the kernel refuses less */
#define VMC_NET_MAX_MTU 65535

struct vmc_net_addr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	uint8_t prefix;
};

struct vmc_net_iface {
	char name[IFNAMSIZ];
	uint8_t mac[6];
	uint32_t mtu;
	size_t naddrs;
	struct vmc_net_addr addrs[VMC_NET_MAX_ADDRS];
};

struct vmc_net_route {
	int family;
	uint8_t dst[16];
	uint8_t dst_len;
	bool has_gateway;
	uint8_t gateway[16];
	uint32_t metric;
	size_t iface; /* an index into ifaces */
};

struct vmc_net {
	size_t nifaces;
	struct vmc_net_iface ifaces[VMC_NET_MAX_IFACES];
	size_t nroutes;
	struct vmc_net_route routes[VMC_NET_MAX_ROUTES];
};

/* {"interfaces": [{"name", "mac", "mtu", "addresses": ["A/P"]}],
 *  "routes": [{"dst": "A/P", "gateway": "A" (optional), "dev", "metric"}]} */
json_t *vmc_net_to_json(const struct vmc_net *n);
/* Refuses what is not that shape, an interface name the kernel would refuse, a multicast or
 * zero MAC, an MTU outside 68..65535, a prefix too long for its family, a route on an
 * interface not listed or through a gateway of another family, more than the maxima. */
int vmc_net_from_json(json_t *j, struct vmc_net *n, vs_err_t *err);

#endif
