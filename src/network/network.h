/* Container networks through CNI: the door of src/network/. `vessel network ...` and
 * what the engine calls to give a container a network namespace and an address
 * (docs/networks.md). */
#ifndef VESSEL_NETWORK_NETWORK_H
#define VESSEL_NETWORK_NETWORK_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/globals.h"

/* `vessel network create|ls|inspect|rm`; argv[0] is "network". Returns the exit status. */
int network_main(int argc, char **argv, const struct vs_globals *g);

struct network_port { /* -p HOST:CTR[/tcp|udp] */
	uint16_t host_port, container_port;
	const char *protocol; /* "tcp" or "udp" */
	const char *host_ip;  /* NULL: all */
};
struct network_attach_req {
	const char *store;	  /* the state dir (NULL: /var/lib/vessel) */
	const char *network;	  /* a network's name (NULL or "vessel": the default network) */
	const char *container_id; /* CNI_CONTAINERID */
	const char *netns_path;	  /* from network_netns_create */
	const char *ifname;	  /* NULL: "eth0" */
	const struct network_port *ports;
	size_t nports;
	uint64_t rate_bps;    /* bandwidth plugin, both directions; 0: none */
	const char *hostname; /* for name resolution between containers */
};
struct network_attachment {
	char ip[64], gateway[64], mac[32]; /* ip in CIDR form: the first IPv4 (else the first) */
	char ip6[64], gateway6[64];	   /* the first IPv6 address, CIDR; "" if none */
	char dns_server[64];		   /* "" if none */
};

/* A new network namespace, its lo up, bind-mounted at a path under the store's run dir. */
int network_netns_create(const char *store, const char *container_id, char *path, size_t len,
			 vs_err_t *err);
int network_netns_remove(const char *path, vs_err_t *err); /* idempotent */
/* CNI ADD through the network's conflist; the result is kept (for DEL/CHECK and peers). */
int network_attach(const struct network_attach_req *req, struct network_attachment *out,
		   vs_err_t *err);
/* CNI DEL in reverse order, with the kept result; idempotent (nothing kept: 0). */
int network_detach(const struct network_attach_req *req, vs_err_t *err);
/* CNI CHECK. */
int network_check(const struct network_attach_req *req, vs_err_t *err);
/* Every address of every container attached to network (hostname, ip; a dual-stack
 * container twice): for /etc/hosts of a peer. */
int network_peers(const char *store, const char *network,
		  int (*fn)(const char *hostname, const char *ip, void *arg), void *arg,
		  vs_err_t *err);

#endif
