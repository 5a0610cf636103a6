#include "network/inet6.h"
#include "network/netconf.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/json.h"
#include "base/util.h"

void netconf_path(char *buf, size_t size, const char *store, const char *sub, const char *name)
{
	if (!store)
		store = NETWORK_DEFAULT_STORE;
	if (name)
		snprintf(buf, size, "%s/%s/%s", store, sub, name);
	else
		snprintf(buf, size, "%s/%s", store, sub);
}

static bool valid_name(const char *n)
{
	size_t len = strlen(n);
	if (len == 0 || len > 32 || n[0] == '.' || n[0] == '-')
		return false;
	for (const char *p = n; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
			return false;
	return true;
}

/* A subnet of either family: addr in network order (IPv4 in its first 4 bytes), so one
 * comparison of leading bits serves both. */
struct cidr {
	int family;
	unsigned char addr[16];
	int prefix;
};

/* 0, or -1 when s is not ADDR/PREFIX of either family (prefix bounds not checked). */
static int parse_cidr(const char *s, struct cidr *c)
{
	char addr[64];
	const char *slash = strchr(s, '/');
	if (!slash || (size_t)(slash - s) >= sizeof(addr))
		return -1;
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = '\0';
	if (slash[1] < '0' || slash[1] > '9')
		return -1;
	char *end;
	errno = 0;
	long p = strtol(slash + 1, &end, 10);
	if (*end || errno)
		return -1;
	memset(c, 0, sizeof(*c));
	c->family = strchr(addr, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(c->family, addr, c->addr) != 1 || p < 0 ||
	    p > (c->family == AF_INET ? 32 : 128))
		return -1;
	c->prefix = (int)p;
	return 0;
}

/* Do the first bits bits of a and b agree? */
static bool same_bits(const unsigned char *a, const unsigned char *b, int bits)
{
	int bytes = bits / 8, rest = bits % 8;
	if (memcmp(a, b, (size_t)bytes) != 0)
		return false;
	if (!rest)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[bytes] & mask) == (b[bytes] & mask);
}

static bool host_bits_set(const struct cidr *c)
{
	int len = c->family == AF_INET ? 4 : 16;
	for (int bit = c->prefix; bit < len * 8; bit++)
		if (c->addr[bit / 8] & (0x80 >> (bit % 8)))
			return true;
	return false;
}

static bool overlaps(const struct cidr *a, const struct cidr *b)
{
	return a->family == b->family &&
	       same_bits(a->addr, b->addr, a->prefix < b->prefix ? a->prefix : b->prefix);
}

static void cidr_format(const struct cidr *c, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN];
	inet_ntop(c->family, c->addr, a, sizeof(a));
	snprintf(buf, size, "%s/%d", a, c->prefix);
}

/* Does a host route (other than a default one) cover part of c? */
static bool route_taken(const struct cidr *c)
{
	char line[512];
	bool taken = false;
	FILE *f = fopen(c->family == AF_INET ? "/proc/net/route" : "/proc/net/ipv6_route", "re");
	while (f && !taken && fgets(line, sizeof(line), f)) {
		struct cidr r = {.family = c->family};
		if (c->family == AF_INET) {
			char ifn[64];
			unsigned dst, gw, flags, mask;
			if (sscanf(line, "%63s %x %x %x %*s %*s %*s %x", ifn, &dst, &gw, &flags,
				   &mask) != 5)
				continue;
			/* the kernel prints the network-order word as a host integer */
			memcpy(r.addr, &dst, 4);
			r.prefix = __builtin_popcount(mask);
		} else {
			/* 32 hex digits of the destination, its prefix length in hex, ... */
			char dst[33];
			unsigned plen;
			if (sscanf(line, "%32s %x", dst, &plen) != 2 || strlen(dst) != 32)
				continue;
			if (!inet6_from_proc_hex(dst, r.addr))
				continue;
			r.prefix = (int)plen;
		}
		if (r.prefix > 0 && overlaps(c, &r))
			taken = true;
	}
	if (f)
		fclose(f);
	return taken;
}

/* The name of the network whose subnet covers part of c into other; false if none. */
static bool network_taken(const char *store, const struct cidr *c, char *other, size_t size)
{
	bool taken = false;
	char dir[4096];
	netconf_path(dir, sizeof(dir), store, "networks", NULL);
	DIR *d = opendir(dir);
	struct dirent *de;
	while (!taken && d && (de = readdir(d))) {
		char path[8192];
		size_t n = strlen(de->d_name);
		if (n <= 9 || strcmp(de->d_name + n - 9, ".conflist") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		json_t *conf = json_load_file(path, 0, NULL);
		json_t *ranges = json_object_get(
			json_object_get(json_array_get(json_object_get(conf, "plugins"), 0), "ipam"),
			"ranges");
		size_t i;
		json_t *set;
		json_array_foreach(ranges, i, set)
		{
			struct cidr o;
			const char *s = json_string_value(
				json_object_get(json_array_get(set, 0), "subnet"));
			if (s && parse_cidr(s, &o) == 0 && overlaps(c, &o) && !taken) {
				taken = true;
				snprintf(other, size, "%.*s", (int)(n - 9), de->d_name);
			}
		}
		json_decref(conf);
	}
	if (d)
		closedir(d);
	return taken;
}

/* Does a host route or another network's subnet cover part of c? */
static bool subnet_taken(const char *store, const struct cidr *c)
{
	char other[256];
	return route_taken(c) || network_taken(store, c, other, sizeof(other));
}

/* A free IPv4 /16 in 10.0.0.0/8 from 10.89 on: 10.88.0.0/16 is podman's, vessel starts
 * beside it. */
static int pick_ipv4(const char *store, const char *name, struct cidr *c, vs_err_t *err)
{
	*c = (struct cidr){.family = AF_INET, .addr = {10}, .prefix = 16};
	for (int i = 89; i < 255; i++) {
		c->addr[1] = (unsigned char)i;
		if (!subnet_taken(store, c))
			return 0;
	}
	return vs_err(err, 0, "network %s: every 10.X.0.0/16 is taken", name);
}

/* A free ULA /64 (RFC 4193: fd00::/8 and a random 40-bit global ID, subnet 0), as
 * podman picks one: random, so two hosts' networks hardly ever meet when routed. */
static int pick_ipv6(const char *store, const char *name, struct cidr *c, vs_err_t *err)
{
	for (int tries = 0; tries < 64; tries++) {
		*c = (struct cidr){.family = AF_INET6, .addr = {0xfd}, .prefix = 64};
		if (getrandom(c->addr + 1, 5, 0) != 5)
			return vs_err(err, errno, "network %s: getrandom for an IPv6 subnet", name);
		if (!subnet_taken(store, c))
			return 0;
	}
	return vs_err(err, 0, "network %s: no free IPv6 /64 in fd00::/8 after 64 tries", name);
}

/* One --subnet: a CIDR of either family, no host bits, a prefix host-local can use and
 * that leaves room for the gateway and containers. */
static int check_subnet(const char *name, const char *s, struct cidr *c, vs_err_t *err)
{
	if (parse_cidr(s, c) < 0)
		return vs_err(err, 0, "network %s: --subnet `%s` is not a CIDR (ADDRESS/PREFIX)",
			      name, s);
	if (c->family == AF_INET && (c->prefix < 8 || c->prefix > 30))
		return vs_err(err, 0, "network %s: --subnet `%s`: an IPv4 prefix is /8 to /30",
			      name, s);
	/* shorter than /48 is more than a site's whole allocation; longer than /120
	 * leaves host-local too few addresses to hand out */
	if (c->family == AF_INET6 && (c->prefix < 48 || c->prefix > 120))
		return vs_err(err, 0, "network %s: --subnet `%s`: an IPv6 prefix is /48 to /120",
			      name, s);
	if (host_bits_set(c))
		return vs_err(err, 0, "network %s: --subnet `%s` has host bits set", name, s);
	return 0;
}

int netconf_create(const char *store, const char *name, const char *const *subnets,
		   size_t nsubnets, bool ipv6, vs_err_t *err)
{
	if (!valid_name(name))
		return vs_err(err, 0, "network `%s`: a name is 1-32 of [A-Za-z0-9._-]", name);
	char dir[4096], path[4200], ipam[4096];
	netconf_path(dir, sizeof(dir), store, "networks", NULL);
	netconf_path(ipam, sizeof(ipam), store, "network-ipam", NULL);
	snprintf(path, sizeof(path), "%s/%s.conflist", dir, name);
	if (access(path, F_OK) == 0)
		return vs_err(err, EEXIST, "network %s", name);
	/* [0] IPv4, [1] IPv6; a family stays 0 when the network has none */
	struct cidr fam[2] = {{0}};
	for (size_t i = 0; i < nsubnets; i++) {
		struct cidr c;
		if (check_subnet(name, subnets[i], &c, err) < 0)
			return -1;
		struct cidr *slot = &fam[c.family == AF_INET6];
		if (slot->family)
			return vs_err(err, 0,
				      "network %s: --subnet `%s`: one IPv%c subnet per network",
				      name, subnets[i], c.family == AF_INET ? '4' : '6');
		/* two bridges routing one subnet: neither network would work. A host
		 * route over it is left to the user (podman refuses that as well) */
		char other[256];
		if (network_taken(store, &c, other, sizeof(other)))
			return vs_err(err, 0, "network %s: --subnet `%s` overlaps network %s's",
				      name, subnets[i], other);
		*slot = c;
	}
	/* podman's rules: no subnet is an IPv4 network; --ipv6 is dual-stack, the missing
	 * family picked; subnets alone are what the network has */
	if ((!nsubnets || ipv6) && !fam[0].family && pick_ipv4(store, name, &fam[0], err) < 0)
		return -1;
	if (ipv6 && !fam[1].family && pick_ipv6(store, name, &fam[1], err) < 0)
		return -1;
	if (vs_mkdir_p(dir, 0700, err) < 0)
		return -1;
	/* interface names are at most 15 bytes: the bridge is named by a hash of the network */
	unsigned h = 5381;
	for (const char *p = name; *p; p++)
		h = h * 33 + (unsigned char)*p;
	char bridge[16];
	snprintf(bridge, sizeof(bridge), "vs%08x", h);
	/* host-local: one range set per family, so a container gets an address of each */
	json_t *ranges = json_array(), *routes = json_array();
	for (int i = 0; i < 2; i++) {
		if (!fam[i].family)
			continue;
		char sub[INET6_ADDRSTRLEN + 8];
		cidr_format(&fam[i], sub, sizeof(sub));
		json_array_append_new(ranges, json_pack("[{s:s}]", "subnet", sub));
		json_array_append_new(routes, json_pack("{s:s}", "dst", i ? "::/0" : "0.0.0.0/0"));
	}
	json_t *c = json_pack(
		"{s:s, s:s, s:[{s:s, s:s, s:b, s:b, s:b, s:{s:s, s:o, s:o, s:s}},"
		" {s:s, s:{s:b}}, {s:s, s:s}, {s:s}, {s:s, s:{s:b}}]}",
		"cniVersion", "1.0.0", "name", name, "plugins",
		"type", "bridge", "bridge", bridge, "isGateway", 1, "ipMasq", 1, "hairpinMode", 1,
		"ipam", "type", "host-local", "ranges", ranges, "routes", routes,
		"dataDir", ipam,
		"type", "portmap", "capabilities", "portMappings", 1,
		"type", "firewall", "backend", "iptables",
		"type", "tuning",
		"type", "bandwidth", "capabilities", "bandwidth", 1);
	if (!c)
		return vs_err(err, ENOMEM, "network %s: conflist", name);
	char tmp[4300];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int rc = json_dump_file(c, tmp, JSON_INDENT(2));
	json_decref(c);
	if (rc < 0 || rename(tmp, path) < 0) {
		unlink(tmp);
		return vs_err(err, errno, "network %s: writing %s", name, path);
	}
	return 0;
}

json_t *netconf_load(const char *store, const char *name, vs_err_t *err)
{
	if (!name)
		name = NETWORK_DEFAULT_NAME;
	if (!valid_name(name))
		return vs_err(err, 0, "network `%s`: not a network name", name), NULL;
	char path[4200];
	netconf_path(path, sizeof(path), store, "networks", name);
	strcat(path, ".conflist");
	if (access(path, F_OK) < 0 && errno == ENOENT) {
		if (strcmp(name, NETWORK_DEFAULT_NAME) != 0)
			return vs_err(err, ENOENT, "network %s", name), NULL;
		if (netconf_create(store, name, NULL, 0, false, err) < 0 && (!*err || (*err)->errnum != EEXIST))
			return NULL;
		vs_err_free(err);
	}
	return vjson_load_file(path, 1 << 20, err);
}

int netconf_attached(const char *store, const char *name, vs_err_t *err)
{
	char dir[4096];
	netconf_path(dir, sizeof(dir), store, "network-attach", name);
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : vs_err(err, errno, "network %s: %s", name, dir);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strstr(de->d_name, ".json"))
			n++;
	closedir(d);
	return n;
}
