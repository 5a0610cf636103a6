/* The guest's interfaces as the container's network namespace has them on the host: found
 * by MAC (the host gave each virtio-net device its interface's), moved into the container's
 * new network namespace in the guest under the interface's name (the guest's runtime made
 * that namespace from the same config.json, so the container keeps runc's semantics: its
 * own loopback, its net.* sysctls), then MTU, up, the addresses, the routes. */
#include "vmc/guest_net.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/util.h"
#include "vmc/net_msg.h"
#include "base/nl.h"

struct by_mac {
	const struct vmc_net *n;
	int index[VMC_NET_MAX_IFACES];
};

static int find_link(const struct nlmsghdr *h, void *arg)
{
	struct by_mac *b = arg;
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	const struct rtattr *tb[IFLA_MAX + 1];
	if (h->nlmsg_type != RTM_NEWLINK || nl_parse_attrs(h, sizeof(*ifi), tb, IFLA_MAX) < 0 ||
	    !tb[IFLA_ADDRESS] || RTA_PAYLOAD(tb[IFLA_ADDRESS]) != ETH_ALEN)
		return 0;
	for (size_t i = 0; i < b->n->nifaces; i++)
		if (memcmp(RTA_DATA(tb[IFLA_ADDRESS]), b->n->ifaces[i].mac, ETH_ALEN) == 0)
			b->index[i] = ifi->ifi_index;
	return 0;
}

static int set_link(int fd, int index, const char *name, uint32_t mtu, bool up)
{
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC,
				.ifi_index = index,
				.ifi_flags = up ? IFF_UP : 0,
				.ifi_change = up ? IFF_UP : 0};
	struct nl_msg m;
	nl_init(&m, RTM_NEWLINK, 0, &ifi, sizeof(ifi));
	if (name)
		nl_put_str(&m, IFLA_IFNAME, name);
	if (mtu)
		nl_put_u32(&m, IFLA_MTU, mtu);
	return nl_request(fd, &m);
}

static size_t addr_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

static int add_addr(int fd, int index, const struct vmc_net_addr *a)
{
	/* no duplicate address detection: the address is the container's already */
	struct ifaddrmsg ifa = {.ifa_family = (uint8_t)a->family,
				.ifa_prefixlen = a->prefix,
				.ifa_flags = a->family == AF_INET6 ? IFA_F_NODAD : 0,
				.ifa_scope = RT_SCOPE_UNIVERSE,
				.ifa_index = (unsigned)index};
	struct nl_msg m;
	nl_init(&m, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof(ifa));
	nl_put(&m, IFA_LOCAL, a->addr, addr_len(a->family));
	nl_put(&m, IFA_ADDRESS, a->addr, addr_len(a->family));
	int rc = nl_request(fd, &m);
	return rc == -EEXIST ? 0 : rc;
}

static int add_route(int fd, int index, const struct vmc_net_route *r)
{
	struct rtmsg rtm = {.rtm_family = (uint8_t)r->family,
			    .rtm_dst_len = r->dst_len,
			    .rtm_table = RT_TABLE_MAIN,
			    .rtm_protocol = RTPROT_BOOT,
			    .rtm_scope = r->has_gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK,
			    .rtm_type = RTN_UNICAST};
	struct nl_msg m;
	nl_init(&m, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &rtm, sizeof(rtm));
	if (r->dst_len)
		nl_put(&m, RTA_DST, r->dst, addr_len(r->family));
	if (r->has_gateway)
		nl_put(&m, RTA_GATEWAY, r->gateway, addr_len(r->family));
	nl_put_u32(&m, RTA_OIF, (uint32_t)index);
	if (r->metric)
		nl_put_u32(&m, RTA_PRIORITY, r->metric);
	int rc = nl_request(fd, &m);
	return rc == -EEXIST ? 0 : rc;
}

static int find_by_mac(int fd, const struct vmc_net *n, struct by_mac *b, vs_err_t *err)
{
	memset(b, 0, sizeof(*b));
	b->n = n;
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
	struct nl_msg m;
	nl_init(&m, RTM_GETLINK, 0, &ifi, sizeof(ifi));
	if (nl_dump(fd, &m, find_link, b, err) < 0)
		return -1;
	for (size_t i = 0; i < n->nifaces; i++) {
		const struct vmc_net_iface *f = &n->ifaces[i];
		if (!b->index[i])
			return vs_err(err, 0,
				      "%s: no guest interface has its MAC "
				      "%02x:%02x:%02x:%02x:%02x:%02x (virtio_net not loaded?)",
				      f->name, f->mac[0], f->mac[1], f->mac[2], f->mac[3],
				      f->mac[4], f->mac[5]);
	}
	return 0;
}

/* in the guest's namespace: each interface into the container's, renamed on the way (the
 * new namespace has only lo: no name clashes there) */
static int move_in(int fd, const struct vmc_net *n, int netns_fd, vs_err_t *err)
{
	struct by_mac b;
	if (find_by_mac(fd, n, &b, err) < 0)
		return -1;
	for (size_t i = 0; i < n->nifaces; i++) {
		struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = b.index[i]};
		struct nl_msg m;
		nl_init(&m, RTM_NEWLINK, 0, &ifi, sizeof(ifi));
		nl_put_u32(&m, IFLA_NET_NS_FD, (uint32_t)netns_fd);
		nl_put_str(&m, IFLA_IFNAME, n->ifaces[i].name);
		int rc = nl_request(fd, &m);
		if (rc < 0)
			return vs_err(err, -rc, "%s: move into the container's network namespace",
				      n->ifaces[i].name);
	}
	return 0;
}

/* in the container's namespace */
static int configure(int fd, const struct vmc_net *n, vs_err_t *err)
{
	/* a new namespace's loopback is always ifindex 1 (LOOPBACK_IFINDEX) */
	int rc = set_link(fd, 1, NULL, 0, true);
	if (rc < 0)
		return vs_err(err, -rc, "bring up lo");
	struct by_mac b;
	if (find_by_mac(fd, n, &b, err) < 0)
		return -1;
	for (size_t i = 0; i < n->nifaces; i++) {
		const struct vmc_net_iface *f = &n->ifaces[i];
		if ((rc = set_link(fd, b.index[i], NULL, f->mtu, true)) < 0)
			return vs_err(err, -rc, "%s: MTU %u, up", f->name, f->mtu);
		for (size_t a = 0; a < f->naddrs; a++)
			if ((rc = add_addr(fd, b.index[i], &f->addrs[a])) < 0)
				return vs_err(err, -rc, "%s: add address #%zu", f->name, a);
	}
	/* routes without a gateway first: they make the gateways reachable */
	for (int pass = 0; pass < 2; pass++)
		for (size_t r = 0; r < n->nroutes; r++) {
			const struct vmc_net_route *rt = &n->routes[r];
			if (rt->has_gateway != (pass == 1))
				continue;
			if ((rc = add_route(fd, b.index[rt->iface], rt)) < 0)
				return vs_err(err, -rc, "%s: add route #%zu",
					      n->ifaces[rt->iface].name, r);
		}
	return 0;
}

int vmc_guest_net_setup(json_t *j, pid_t pid, vs_err_t *err)
{
	struct vmc_net n;
	if (vmc_net_from_json(j, &n, err) < 0)
		return vs_err_wrap(err, "CONFIG");
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	cleanup_close int ns = open(path, O_RDONLY | O_CLOEXEC);
	if (ns < 0)
		return vs_err(err, errno, "the container's network: open %s", path);
	cleanup_close int root = nl_open(err);
	if (root < 0 || move_in(root, &n, ns, err) < 0)
		return vs_err_wrap(err, "the container's network");
	cleanup_close int fd = nl_open_in(ns, err);
	if (fd < 0 || configure(fd, &n, err) < 0)
		return vs_err_wrap(err, "the container's network");
	return 0;
}
