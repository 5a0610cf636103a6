/* The container's network namespace joined to its microVM: a tap per interface, tc both
 * ways (docs/vm-containers.md, Networking). rtnetlink by hand (vmc/nl.h) rather than running
 * iproute2's `tc`: the host need not have it, and a refusal is an errno with context.
 *
 * The interface keeps its addresses in the namespace (as Kata leaves them): every frame
 * that reaches it is redirected to the tap before the namespace's IP stack sees it, so they
 * answer nothing there, and podman's view (inspect, netavark's teardown) stays as it made
 * it. */
#include "vmc/net.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_arp.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/tc_act/tc_mirred.h>
#include <arpa/inet.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "base/nl.h"

#define TAP_PREFIX "vtap"

void vmc_net_tap_name(size_t i, char out[IFNAMSIZ])
{
	snprintf(out, IFNAMSIZ, TAP_PREFIX "%zu", i);
}

/* ---- reading the namespace */

struct probe {
	struct vmc_host_net *hn;
	int index[VMC_NET_MAX_IFACES]; /* the interfaces' ifindex in the namespace */
	bool ours;		       /* a tap of ours: another microVM uses the namespace */
	vs_err_t *err;
};

static const char *link_kind(const struct rtattr *linkinfo)
{
	if (!linkinfo)
		return "";
	const struct rtattr *tb[IFLA_INFO_MAX + 1];
	nl_parse_nested(linkinfo, tb, IFLA_INFO_MAX);
	const struct rtattr *k = tb[IFLA_INFO_KIND];
	if (!k || RTA_PAYLOAD(k) == 0 || ((const char *)RTA_DATA(k))[RTA_PAYLOAD(k) - 1] != '\0')
		return "";
	return RTA_DATA(k);
}

static int probe_link(const struct nlmsghdr *h, void *arg)
{
	struct probe *p = arg;
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	const struct rtattr *tb[IFLA_MAX + 1];
	if (h->nlmsg_type != RTM_NEWLINK || nl_parse_attrs(h, sizeof(*ifi), tb, IFLA_MAX) < 0)
		return 0;
	const struct rtattr *name = tb[IFLA_IFNAME], *mac = tb[IFLA_ADDRESS], *mtu = tb[IFLA_MTU];
	if ((ifi->ifi_flags & IFF_LOOPBACK) || ifi->ifi_type != ARPHRD_ETHER || !name ||
	    RTA_PAYLOAD(name) < 2 || RTA_PAYLOAD(name) > IFNAMSIZ || !mac ||
	    RTA_PAYLOAD(mac) != ETH_ALEN || !mtu || RTA_PAYLOAD(mtu) != 4)
		return 0;
	char ifname[IFNAMSIZ];
	snprintf(ifname, sizeof(ifname), "%.*s", (int)RTA_PAYLOAD(name),
		 (const char *)RTA_DATA(name));
	const char *kind = link_kind(tb[IFLA_LINKINFO]);
	if (strcmp(kind, "tun") == 0) {
		if (strncmp(ifname, TAP_PREFIX, strlen(TAP_PREFIX)) == 0)
			p->ours = true;
		return 0;
	}
	/* a bridge in there is somebody's plumbing, not the container's interface; one that
	 * is down carries nothing of the container's */
	if (strcmp(kind, "bridge") == 0 || !(ifi->ifi_flags & IFF_UP))
		return 0;
	struct vmc_net *n = &p->hn->net;
	if (n->nifaces == VMC_NET_MAX_IFACES)
		return vs_err(p->err, 0, "more than %d interfaces besides loopback",
			      VMC_NET_MAX_IFACES);
	struct vmc_net_iface *f = &n->ifaces[n->nifaces];
	memset(f, 0, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "%s", ifname);
	memcpy(f->mac, RTA_DATA(mac), ETH_ALEN);
	memcpy(&f->mtu, RTA_DATA(mtu), 4);
	if (f->mtu < VMC_NET_MIN_MTU || f->mtu > VMC_NET_MAX_MTU)
		return vs_err(p->err, 0, "%s: MTU %u is not in %d..%d", f->name, f->mtu,
			      VMC_NET_MIN_MTU, VMC_NET_MAX_MTU);
	p->index[n->nifaces++] = ifi->ifi_index;
	return 0;
}

static int iface_of(const struct probe *p, int ifindex)
{
	for (size_t i = 0; i < p->hn->net.nifaces; i++)
		if (p->index[i] == ifindex)
			return (int)i;
	return -1;
}

static size_t addr_len(int family)
{
	return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

static int probe_addr(const struct nlmsghdr *h, void *arg)
{
	struct probe *p = arg;
	const struct ifaddrmsg *ifa = NLMSG_DATA(h);
	const struct rtattr *tb[IFA_MAX + 1];
	if (h->nlmsg_type != RTM_NEWADDR || nl_parse_attrs(h, sizeof(*ifa), tb, IFA_MAX) < 0)
		return 0;
	int i = iface_of(p, (int)ifa->ifa_index);
	size_t len = addr_len(ifa->ifa_family);
	/* link-local addresses the guest's kernel makes itself, from the same MAC */
	if (i < 0 || !len || ifa->ifa_scope >= RT_SCOPE_LINK)
		return 0;
	const struct rtattr *a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (!a || RTA_PAYLOAD(a) != len || ifa->ifa_prefixlen > len * 8)
		return 0;
	struct vmc_net_iface *f = &p->hn->net.ifaces[i];
	if (f->naddrs == VMC_NET_MAX_ADDRS)
		return vs_err(p->err, 0, "%s: more than %d addresses", f->name, VMC_NET_MAX_ADDRS);
	struct vmc_net_addr *x = &f->addrs[f->naddrs++];
	x->family = ifa->ifa_family;
	memcpy(x->addr, RTA_DATA(a), len);
	x->prefix = ifa->ifa_prefixlen;
	return 0;
}

static int probe_route(const struct nlmsghdr *h, void *arg)
{
	struct probe *p = arg;
	const struct rtmsg *rtm = NLMSG_DATA(h);
	const struct rtattr *tb[RTA_MAX + 1];
	if (h->nlmsg_type != RTM_NEWROUTE || nl_parse_attrs(h, sizeof(*rtm), tb, RTA_MAX) < 0)
		return 0;
	uint32_t table = rtm->rtm_table;
	if (tb[RTA_TABLE] && RTA_PAYLOAD(tb[RTA_TABLE]) == 4)
		memcpy(&table, RTA_DATA(tb[RTA_TABLE]), 4);
	size_t len = addr_len(rtm->rtm_family);
	/* the kernel's own routes (an address's subnet) come back with the address; those
	 * learnt from router advertisements the guest learns itself */
	if (table != RT_TABLE_MAIN || rtm->rtm_type != RTN_UNICAST || !len ||
	    rtm->rtm_protocol == RTPROT_KERNEL || rtm->rtm_protocol == RTPROT_RA ||
	    tb[RTA_MULTIPATH] || !tb[RTA_OIF] || RTA_PAYLOAD(tb[RTA_OIF]) != 4 ||
	    rtm->rtm_dst_len > len * 8)
		return 0;
	int oif;
	memcpy(&oif, RTA_DATA(tb[RTA_OIF]), 4);
	int i = iface_of(p, oif);
	if (i < 0)
		return 0;
	struct vmc_net *n = &p->hn->net;
	if (n->nroutes == VMC_NET_MAX_ROUTES)
		return vs_err(p->err, 0, "more than %d routes", VMC_NET_MAX_ROUTES);
	struct vmc_net_route *rt = &n->routes[n->nroutes];
	memset(rt, 0, sizeof(*rt));
	rt->family = rtm->rtm_family;
	rt->dst_len = rtm->rtm_dst_len;
	rt->iface = (size_t)i;
	if (tb[RTA_DST] && RTA_PAYLOAD(tb[RTA_DST]) == len)
		memcpy(rt->dst, RTA_DATA(tb[RTA_DST]), len);
	else if (rt->dst_len)
		return 0;
	if (tb[RTA_GATEWAY] && RTA_PAYLOAD(tb[RTA_GATEWAY]) == len) {
		memcpy(rt->gateway, RTA_DATA(tb[RTA_GATEWAY]), len);
		rt->has_gateway = true;
	}
	if (tb[RTA_PRIORITY] && RTA_PAYLOAD(tb[RTA_PRIORITY]) == 4)
		memcpy(&rt->metric, RTA_DATA(tb[RTA_PRIORITY]), 4);
	n->nroutes++;
	return 0;
}

static int dump(int fd, uint16_t type, const void *hdr, size_t hdr_len,
		int (*fn)(const struct nlmsghdr *, void *), struct probe *p, vs_err_t *err)
{
	struct nl_msg m;
	nl_init(&m, type, 0, hdr, hdr_len);
	return nl_dump(fd, &m, fn, p, err);
}

static const char *netns_path_of(json_t *config)
{
	json_t *ns = json_object_get(json_object_get(config, "linux"), "namespaces");
	size_t i;
	json_t *n;
	json_array_foreach(ns, i, n)
	{
		const char *type = json_string_value(json_object_get(n, "type"));
		if (type && strcmp(type, "network") == 0)
			return json_string_value(json_object_get(n, "path"));
	}
	return NULL;
}

int vmc_net_probe(json_t *config, struct vmc_host_net *hn, vs_err_t *err)
{
	memset(hn, 0, sizeof(*hn));
	hn->netns_fd = -1;
	const char *path = netns_path_of(config);
	if (!path)
		return 0;
	if ((size_t)snprintf(hn->netns_path, sizeof(hn->netns_path), "%s", path) >=
	    sizeof(hn->netns_path))
		return vs_err(err, ENAMETOOLONG, "linux.namespaces: network path");
	cleanup_close int ns = open(path, O_RDONLY | O_CLOEXEC);
	if (ns < 0)
		return vs_err(err, errno, "the container's network namespace `%s`", path);
	cleanup_close int fd = nl_open_in(ns, err);
	if (fd < 0)
		return vs_err_wrap(err, "the container's network namespace `%s`", path);
	struct probe p = {.hn = hn, .err = err};
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
	struct ifaddrmsg ifa = {.ifa_family = AF_UNSPEC};
	struct rtmsg rtm = {.rtm_family = AF_UNSPEC};
	if (dump(fd, RTM_GETLINK, &ifi, sizeof(ifi), probe_link, &p, err) < 0)
		return vs_err_wrap(err, "network namespace `%s`: its interfaces", path);
	if (p.ours)
		return vs_err(err, 0,
			      "network namespace `%s` serves another VM-isolated container "
			      "already (a microVM can't share it)",
			      path);
	if (hn->net.nifaces == 0)
		return 0; /* loopback only: the guest's container gets a namespace of its own */
	if (dump(fd, RTM_GETADDR, &ifa, sizeof(ifa), probe_addr, &p, err) < 0 ||
	    dump(fd, RTM_GETROUTE, &rtm, sizeof(rtm), probe_route, &p, err) < 0)
		return vs_err_wrap(err, "network namespace `%s`", path);
	hn->netns_fd = steal_fd(ns);
	return 0;
}

void vmc_net_release(struct vmc_host_net *hn)
{
	if (hn->netns_fd >= 0)
		close(hn->netns_fd);
	hn->netns_fd = -1;
}

int vmc_net_enter(const struct vmc_host_net *hn, vs_err_t *err)
{
	if (setns(hn->netns_fd, CLONE_NEWNET) < 0)
		return vs_err(err, errno, "enter the container's network namespace `%s`",
			      hn->netns_path);
	return 0;
}

/* ---- tc: the interface and the tap, joined */

static int ingress_qdisc(int fd, int ifindex, bool add)
{
	struct tcmsg t = {.tcm_family = AF_UNSPEC,
			  .tcm_ifindex = ifindex,
			  .tcm_handle = TC_H_MAKE(TC_H_INGRESS, 0),
			  .tcm_parent = TC_H_INGRESS};
	struct nl_msg m;
	nl_init(&m, add ? RTM_NEWQDISC : RTM_DELQDISC, add ? NLM_F_CREATE | NLM_F_EXCL : 0, &t,
		sizeof(t));
	nl_put_str(&m, TCA_KIND, "ingress");
	return nl_request(fd, &m);
}

/* `tc filter add dev FROM parent ffff: protocol all u32 match u8 0 0 action mirred egress
 * redirect dev TO`, what Kata runs: u32 is in every kernel that has tc (matchall is not,
 * this machine's among them) */
static int redirect(int fd, int from, int to)
{
	struct tcmsg t = {.tcm_family = AF_UNSPEC,
			  .tcm_ifindex = from,
			  .tcm_parent = TC_H_MAKE(TC_H_INGRESS, 0),
			  .tcm_info = TC_H_MAKE(1u << 16, htons(ETH_P_ALL))};
	struct nl_msg m;
	nl_init(&m, RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL, &t, sizeof(t));
	nl_put_str(&m, TCA_KIND, "u32");
	struct rtattr *opts = nl_nest_begin(&m, TCA_OPTIONS);
	/* one key that matches every frame: mask 0 at offset 0 */
	struct {
		struct tc_u32_sel sel;
		struct tc_u32_key key;
	} sel = {.sel = {.flags = TC_U32_TERMINAL, .nkeys = 1}};
	nl_put(&m, TCA_U32_SEL, &sel, sizeof(sel));
	struct rtattr *acts = nl_nest_begin(&m, TCA_U32_ACT);
	struct rtattr *act = nl_nest_begin(&m, 1);
	nl_put_str(&m, TCA_ACT_KIND, "mirred");
	struct rtattr *aopts = nl_nest_begin(&m, TCA_ACT_OPTIONS);
	struct tc_mirred parms = {
	    .action = TC_ACT_STOLEN, .eaction = TCA_EGRESS_REDIR, .ifindex = (uint32_t)to};
	nl_put(&m, TCA_MIRRED_PARMS, &parms, sizeof(parms));
	nl_nest_end(&m, aopts);
	nl_nest_end(&m, act);
	nl_nest_end(&m, acts);
	nl_nest_end(&m, opts);
	return nl_request(fd, &m);
}

static int link_mtu_up(int fd, int ifindex, uint32_t mtu)
{
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC,
				.ifi_index = ifindex,
				.ifi_flags = IFF_UP,
				.ifi_change = IFF_UP};
	struct nl_msg m;
	nl_init(&m, RTM_NEWLINK, 0, &ifi, sizeof(ifi));
	nl_put_u32(&m, IFLA_MTU, mtu);
	return nl_request(fd, &m);
}

int vmc_net_connect(const struct vmc_host_net *hn, vs_err_t *err)
{
	cleanup_close int fd = nl_open_in(hn->netns_fd, err);
	if (fd < 0)
		return -1;
	for (size_t i = 0; i < hn->net.nifaces; i++) {
		const struct vmc_net_iface *f = &hn->net.ifaces[i];
		char tap[IFNAMSIZ];
		vmc_net_tap_name(i, tap);
		/* by name in the namespace: this thread is in it (vmc_net_enter) */
		int veth = (int)if_nametoindex(f->name), tapi = (int)if_nametoindex(tap);
		if (!veth || !tapi)
			return vs_err(err, errno, "network namespace `%s`: no %s", hn->netns_path,
				      !veth ? f->name : tap);
		int rc = link_mtu_up(fd, tapi, f->mtu);
		const char *what = "set its MTU and bring it up";
		if (rc == 0) {
			what = "add an ingress qdisc";
			rc = ingress_qdisc(fd, veth, true);
			if (rc == 0 || rc == -EEXIST)
				rc = ingress_qdisc(fd, tapi, true);
			if (rc == -EEXIST)
				rc = 0;
		}
		if (rc == 0) {
			what = "redirect its frames (tc u32 + mirred)";
			rc = redirect(fd, veth, tapi);
			if (rc == 0)
				rc = redirect(fd, tapi, veth);
		}
		if (rc < 0)
			return vs_err(err, -rc, "network namespace `%s`: %s <-> %s: %s",
				      hn->netns_path, f->name, tap, what);
	}
	return 0;
}

/* ---- delete */

struct teardown {
	int index[16];
	bool tap[16];
	size_t n;
};

static int teardown_link(const struct nlmsghdr *h, void *arg)
{
	struct teardown *t = arg;
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	const struct rtattr *tb[IFLA_MAX + 1];
	if (h->nlmsg_type != RTM_NEWLINK || nl_parse_attrs(h, sizeof(*ifi), tb, IFLA_MAX) < 0 ||
	    (ifi->ifi_flags & IFF_LOOPBACK) || t->n == 16)
		return 0;
	const struct rtattr *name = tb[IFLA_IFNAME];
	t->tap[t->n] = strcmp(link_kind(tb[IFLA_LINKINFO]), "tun") == 0 && name &&
		       RTA_PAYLOAD(name) > strlen(TAP_PREFIX) &&
		       strncmp(RTA_DATA(name), TAP_PREFIX, strlen(TAP_PREFIX)) == 0;
	t->index[t->n++] = ifi->ifi_index;
	return 0;
}

void vmc_net_teardown(const char *netns_path)
{
	vs_err_t err = NULL;
	cleanup_close int ns = open(netns_path, O_RDONLY | O_CLOEXEC);
	cleanup_close int fd = ns < 0 ? -1 : nl_open_in(ns, &err);
	struct teardown t = {0};
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
	struct nl_msg m;
	nl_init(&m, RTM_GETLINK, 0, &ifi, sizeof(ifi));
	if (fd < 0 || nl_dump(fd, &m, teardown_link, &t, &err) < 0) {
		vs_err_free(&err);
		return;
	}
	for (size_t i = 0; i < t.n; i++) {
		if (t.tap[i]) {
			struct ifinfomsg del = {.ifi_family = AF_UNSPEC, .ifi_index = t.index[i]};
			nl_init(&m, RTM_DELLINK, 0, &del, sizeof(del));
			nl_request(fd, &m);
		} else {
			/* ENOENT/EINVAL: it had none, which is what we want */
			ingress_qdisc(fd, t.index[i], false);
		}
	}
}
