/* `--net tap=NAME[,mac=MAC][,bw=RATE][,ops=N][,bw_burst=SIZE][,ops_burst=N]`, parsed and
 * checked before anything is opened, so a typo is one clear line and not a half-built VM. */
#ifndef VESSEL_VMM_VIRTIO_NET_SPEC_H
#define VESSEL_VMM_VIRTIO_NET_SPEC_H

#include <jansson.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "base/ratelimit.h"
#include "vmm/config.h"

struct net_spec {
	char tap[IFNAMSIZ];
	uint8_t mac[6];
	bool has_mac;
	/* bw= bytes/s and ops= frames/s, each direction on its own (as Firecracker's rx and
	 * tx limiters); unlimited unless given */
	struct rate_limiter rl;
	/* the transmit side's own (a JSON config's tx_rate_limiter, unlimited when absent: each
	 * of Firecracker's limiters is one direction's); without it (--net's bw=, ops=) rl
	 * limits both directions */
	bool has_tx_rl;
	struct rate_limiter tx_rl;
};

/* Errors name the option (`mac: not a MAC address ...`); the caller prefixes `--net SPEC`. */
int net_spec_parse(const char *spec, struct net_spec *out, vs_err_t *err);

/* A Firecracker NetworkInterface object (config file, API): iface_id, host_dev_name,
 * guest_mac, rx_rate_limiter, tx_rate_limiter. Errors name the member. */
int net_spec_from_json(json_t *obj, struct net_spec *out, vs_err_t *err);
/* A PartialNetworkInterface (PATCH /network-interfaces/{iface_id} once the microVM is
 * started): iface_id, and rx_rate_limiter and/or tx_rate_limiter. */
struct net_patch {
	bool has_rx, has_tx;
	struct rl_patch rx, tx;
};
/* Errors name the member; a body that changes nothing is refused too. */
int net_patch_from_json(json_t *obj, struct net_patch *out, vs_err_t *err);

/* "52:54:00:12:34:56": six hex pairs; multicast and all-zero addresses are refused. */
int net_parse_mac(const char *s, uint8_t mac[6], vs_err_t *err);

/* A random locally administered unicast address (02:xx:...), for --net without mac=. */
void net_random_mac(uint8_t mac[6]);

#endif
