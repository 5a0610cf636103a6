/* Networks on disk: STORE/networks/NAME.conflist (CNI 1.0.0), the default network
 * made on first use. */
#ifndef VESSEL_NETWORK_NETCONF_H
#define VESSEL_NETWORK_NETCONF_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"

#define NETWORK_DEFAULT_STORE "/var/lib/vessel"
#define NETWORK_DEFAULT_NAME "vessel"

/* STORE/SUB[/NAME] into buf. */
void netconf_path(char *buf, size_t size, const char *store, const char *sub, const char *name);
/* Writes a new network's conflist with subnets (at most one per family). No subnets: an
 * IPv4 /16 that no host route or other network covers. ipv6: dual-stack, a family
 * without a subnet given one (IPv6: a random ULA /64). */
int netconf_create(const char *store, const char *name, const char *const *subnets, size_t nsubnets,
		   bool ipv6, vs_err_t *err);
/* The conflist of name (the default one is created when missing). */
json_t *netconf_load(const char *store, const char *name, vs_err_t *err);
/* The number of containers attached to name (kept results). */
int netconf_attached(const char *store, const char *name, vs_err_t *err);

#endif
