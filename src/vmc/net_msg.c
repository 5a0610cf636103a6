#include "vmc/net_msg.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static void addr_text(int family, const uint8_t *a, int prefix, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN];
	inet_ntop(family, a, ip, sizeof(ip));
	if (prefix >= 0)
		snprintf(out, len, "%s/%d", ip, prefix);
	else
		snprintf(out, len, "%s", ip);
}

json_t *vmc_net_to_json(const struct vmc_net *n)
{
	json_t *ifaces = json_array(), *routes = json_array();
	char text[INET6_ADDRSTRLEN + 8];
	for (size_t i = 0; i < n->nifaces; i++) {
		const struct vmc_net_iface *f = &n->ifaces[i];
		char mac[18];
		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", f->mac[0], f->mac[1],
			 f->mac[2], f->mac[3], f->mac[4], f->mac[5]);
		json_t *addrs = json_array();
		for (size_t a = 0; a < f->naddrs; a++) {
			addr_text(f->addrs[a].family, f->addrs[a].addr, f->addrs[a].prefix, text,
				  sizeof(text));
			json_array_append_new(addrs, json_string(text));
		}
		json_array_append_new(ifaces,
				      json_pack("{s:s, s:s, s:i, s:o}", "name", f->name, "mac", mac,
						"mtu", (json_int_t)f->mtu, "addresses", addrs));
	}
	for (size_t r = 0; r < n->nroutes; r++) {
		const struct vmc_net_route *rt = &n->routes[r];
		addr_text(rt->family, rt->dst, rt->dst_len, text, sizeof(text));
		json_t *o = json_pack("{s:s, s:s, s:i}", "dst", text, "dev",
				      n->ifaces[rt->iface].name, "metric", (json_int_t)rt->metric);
		if (rt->has_gateway) {
			addr_text(rt->family, rt->gateway, -1, text, sizeof(text));
			json_object_set_new(o, "gateway", json_string(text));
		}
		json_array_append_new(routes, o);
	}
	return json_pack("{s:o, s:o}", "interfaces", ifaces, "routes", routes);
}

/* what the kernel's dev_valid_name takes, printable ASCII only (it reaches messages) */
static bool valid_ifname(const char *s)
{
	size_t n = strlen(s);
	if (!n || n >= IFNAMSIZ || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] >= 0x7f || s[i] == '/' || s[i] == ':')
			return false;
	return true;
}

/* "A" or "A/P": family and address, the prefix (-1 when none was given) */
static int parse_addr(const char *s, bool want_prefix, int *family, uint8_t addr[16],
		      uint8_t *prefix)
{
	char ip[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t len = slash ? (size_t)(slash - s) : strlen(s);
	if (len == 0 || len >= sizeof(ip) || (slash != NULL) != want_prefix)
		return -1;
	memcpy(ip, s, len);
	ip[len] = '\0';
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, ip, addr) == 1)
		*family = AF_INET;
	else if (inet_pton(AF_INET6, ip, addr) == 1)
		*family = AF_INET6;
	else
		return -1;
	if (!want_prefix)
		return 0;
	const char *p = slash + 1;
	unsigned max = *family == AF_INET ? 32 : 128, v = 0;
	if (!*p || strlen(p) > 3 || strspn(p, "0123456789") != strlen(p))
		return -1;
	for (; *p; p++)
		v = v * 10 + (unsigned)(*p - '0');
	if (v > max)
		return -1;
	*prefix = (uint8_t)v;
	return 0;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned b[6];
	char end;
	if (strlen(s) != 17 || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3],
				      &b[4], &b[5], &end) != 6)
		return -1;
	unsigned any = 0;
	for (int i = 0; i < 6; i++) {
		mac[i] = (uint8_t)b[i];
		any |= b[i];
	}
	/* the guest's own address: unicast, not zero */
	return (mac[0] & 1) || !any ? -1 : 0;
}

static int parse_iface(json_t *o, size_t i, struct vmc_net_iface *f, vs_err_t *err)
{
	const char *name = json_string_value(json_object_get(o, "name"));
	const char *mac = json_string_value(json_object_get(o, "mac"));
	json_t *mtu = json_object_get(o, "mtu"), *addrs = json_object_get(o, "addresses");
	if (!json_is_object(o))
		return vs_err(err, 0, "net.interfaces[%zu]: not an object", i);
	if (!name || !valid_ifname(name))
		return vs_err(err, 0, "net.interfaces[%zu].name: not an interface name", i);
	snprintf(f->name, sizeof(f->name), "%s", name);
	if (!mac || parse_mac(mac, f->mac) < 0)
		return vs_err(err, 0, "net.interfaces[%zu].mac: not a unicast MAC address", i);
	if (!json_is_integer(mtu) || json_integer_value(mtu) < VMC_NET_MIN_MTU ||
	    json_integer_value(mtu) > VMC_NET_MAX_MTU)
		return vs_err(err, 0, "net.interfaces[%zu].mtu: not in %d..%d", i, VMC_NET_MIN_MTU,
			      VMC_NET_MAX_MTU);
	f->mtu = (uint32_t)json_integer_value(mtu);
	if (!json_is_array(addrs) || json_array_size(addrs) > VMC_NET_MAX_ADDRS)
		return vs_err(err, 0, "net.interfaces[%zu].addresses: not an array of at most %d",
			      i, VMC_NET_MAX_ADDRS);
	for (size_t a = 0; a < json_array_size(addrs); a++) {
		const char *s = json_string_value(json_array_get(addrs, a));
		struct vmc_net_addr *x = &f->addrs[a];
		if (!s || parse_addr(s, true, &x->family, x->addr, &x->prefix) < 0)
			return vs_err(
			    err, 0, "net.interfaces[%zu].addresses[%zu]: not ADDRESS/PREFIX", i, a);
	}
	f->naddrs = json_array_size(addrs);
	return 0;
}

static int parse_route(json_t *o, size_t r, const struct vmc_net *n, struct vmc_net_route *rt,
		       vs_err_t *err)
{
	if (!json_is_object(o))
		return vs_err(err, 0, "net.routes[%zu]: not an object", r);
	const char *dst = json_string_value(json_object_get(o, "dst"));
	const char *dev = json_string_value(json_object_get(o, "dev"));
	json_t *gw = json_object_get(o, "gateway"), *metric = json_object_get(o, "metric");
	if (!dst || parse_addr(dst, true, &rt->family, rt->dst, &rt->dst_len) < 0)
		return vs_err(err, 0, "net.routes[%zu].dst: not ADDRESS/PREFIX", r);
	size_t i = 0;
	while (dev && i < n->nifaces && strcmp(n->ifaces[i].name, dev) != 0)
		i++;
	if (!dev || i == n->nifaces)
		return vs_err(err, 0, "net.routes[%zu].dev: not one of net.interfaces", r);
	rt->iface = i;
	if (gw) {
		int family;
		uint8_t none;
		if (!json_is_string(gw) ||
		    parse_addr(json_string_value(gw), false, &family, rt->gateway, &none) < 0 ||
		    family != rt->family)
			return vs_err(err, 0,
				      "net.routes[%zu].gateway: not an address of dst's family", r);
		rt->has_gateway = true;
	}
	if (metric && (!json_is_integer(metric) || json_integer_value(metric) < 0 ||
		       json_integer_value(metric) > UINT32_MAX))
		return vs_err(err, 0, "net.routes[%zu].metric: not a 32-bit unsigned", r);
	rt->metric = metric ? (uint32_t)json_integer_value(metric) : 0;
	return 0;
}

int vmc_net_from_json(json_t *j, struct vmc_net *n, vs_err_t *err)
{
	memset(n, 0, sizeof(*n));
	json_t *ifaces = json_object_get(j, "interfaces"), *routes = json_object_get(j, "routes");
	if (!json_is_object(j) || !json_is_array(ifaces) || !json_is_array(routes))
		return vs_err(err, 0, "net: not {\"interfaces\": [...], \"routes\": [...]}");
	if (json_array_size(ifaces) > VMC_NET_MAX_IFACES)
		return vs_err(err, 0, "net.interfaces: more than %d", VMC_NET_MAX_IFACES);
	if (json_array_size(routes) > VMC_NET_MAX_ROUTES)
		return vs_err(err, 0, "net.routes: more than %d", VMC_NET_MAX_ROUTES);
	for (size_t i = 0; i < json_array_size(ifaces); i++) {
		if (parse_iface(json_array_get(ifaces, i), i, &n->ifaces[i], err) < 0)
			return -1;
		for (size_t k = 0; k < i; k++)
			if (strcmp(n->ifaces[k].name, n->ifaces[i].name) == 0 ||
			    memcmp(n->ifaces[k].mac, n->ifaces[i].mac, 6) == 0)
				return vs_err(err, 0,
					      "net.interfaces[%zu]: the name or MAC of "
					      "interfaces[%zu] again",
					      i, k);
		n->nifaces = i + 1;
	}
	for (size_t r = 0; r < json_array_size(routes); r++) {
		if (parse_route(json_array_get(routes, r), r, n, &n->routes[r], err) < 0)
			return -1;
		n->nroutes = r + 1;
	}
	return 0;
}
