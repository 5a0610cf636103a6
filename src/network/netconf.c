#include "network/netconf.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static int parse_cidr(const char *s, uint32_t *net, int *prefix)
{
	char addr[64];
	const char *slash = strchr(s, '/');
	if (!slash || (size_t)(slash - s) >= sizeof(addr))
		return -1;
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = '\0';
	char *end;
	long p = strtol(slash + 1, &end, 10);
	struct in_addr a;
	if (*end || end == slash + 1 || p < 8 || p > 30 || inet_pton(AF_INET, addr, &a) != 1)
		return -1;
	*prefix = (int)p;
	*net = ntohl(a.s_addr);
	return 0;
}

static bool overlaps(uint32_t a, int pa, uint32_t b, int pb)
{
	int p = pa < pb ? pa : pb;
	uint32_t mask = p ? ~0u << (32 - p) : 0;
	return (a & mask) == (b & mask);
}

/* Does any host route (other than the default) or other network's subnet cover net? */
static bool subnet_taken(const char *store, uint32_t net, int prefix)
{
	FILE *f = fopen("/proc/net/route", "re");
	char line[256];
	bool taken = false;
	while (f && fgets(line, sizeof(line), f)) {
		char ifn[64];
		unsigned dst, gw, flags, mask;
		if (sscanf(line, "%63s %x %x %x %*s %*s %*s %x", ifn, &dst, &gw, &flags, &mask) != 5)
			continue;
		if (mask == 0)
			continue;
		int p = __builtin_popcount(mask);
		if (overlaps(net, prefix, ntohl(dst), p))
			taken = true;
	}
	if (f)
		fclose(f);
	char dir[4096];
	netconf_path(dir, sizeof(dir), store, "networks", NULL);
	DIR *d = opendir(dir);
	struct dirent *de;
	while (!taken && d && (de = readdir(d))) {
		char path[8192];
		if (!strstr(de->d_name, ".conflist"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		json_t *c = json_load_file(path, 0, NULL);
		const char *s = json_string_value(json_object_get(
			json_array_get(json_array_get(
					       json_object_get(json_object_get(
								       json_array_get(json_object_get(c, "plugins"), 0),
								       "ipam"),
							       "ranges"),
					       0),
				       0),
			"subnet"));
		uint32_t n2;
		int p2;
		if (s && parse_cidr(s, &n2, &p2) == 0 && overlaps(net, prefix, n2, p2))
			taken = true;
		json_decref(c);
	}
	if (d)
		closedir(d);
	return taken;
}

int netconf_create(const char *store, const char *name, const char *subnet, vs_err_t *err)
{
	if (!valid_name(name))
		return vs_err(err, 0, "network `%s`: a name is 1-32 of [A-Za-z0-9._-]", name);
	char sub[64];
	uint32_t net;
	int prefix;
	if (subnet) {
		if (parse_cidr(subnet, &net, &prefix) < 0)
			return vs_err(err, 0, "network %s: --subnet `%s` is not an IPv4 CIDR (/8 to /30)",
				      name, subnet);
		uint32_t mask = ~0u << (32 - prefix);
		if (net & ~mask)
			return vs_err(err, 0, "network %s: --subnet `%s` has host bits set", name,
				      subnet);
		snprintf(sub, sizeof(sub), "%s", subnet);
	} else {
		/* 10.88.0.0/16 is podman's; vessel starts beside it */
		int i;
		for (i = 89; i < 255; i++)
			if (!subnet_taken(store, (10u << 24) | ((uint32_t)i << 16), 16))
				break;
		if (i == 255)
			return vs_err(err, 0, "network %s: every 10.X.0.0/16 is taken", name);
		snprintf(sub, sizeof(sub), "10.%d.0.0/16", i);
	}
	char dir[4096], path[4200], ipam[4096];
	netconf_path(dir, sizeof(dir), store, "networks", NULL);
	netconf_path(ipam, sizeof(ipam), store, "network-ipam", NULL);
	if (vs_mkdir_p(dir, 0700, err) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/%s.conflist", dir, name);
	if (access(path, F_OK) == 0)
		return vs_err(err, EEXIST, "network %s", name);
	/* interface names are at most 15 bytes: the bridge is named by a hash of the network */
	unsigned h = 5381;
	for (const char *p = name; *p; p++)
		h = h * 33 + (unsigned char)*p;
	char bridge[16];
	snprintf(bridge, sizeof(bridge), "vs%08x", h);
	json_t *c = json_pack(
		"{s:s, s:s, s:[{s:s, s:s, s:b, s:b, s:b, s:{s:s, s:[[{s:s}]], s:[{s:s}], s:s}},"
		" {s:s, s:{s:b}}, {s:s, s:s}, {s:s}, {s:s, s:{s:b}}]}",
		"cniVersion", "1.0.0", "name", name, "plugins",
		"type", "bridge", "bridge", bridge, "isGateway", 1, "ipMasq", 1, "hairpinMode", 1,
		"ipam", "type", "host-local", "ranges", "subnet", sub, "routes", "dst", "0.0.0.0/0",
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
		if (netconf_create(store, name, NULL, err) < 0 && (!*err || (*err)->errnum != EEXIST))
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
