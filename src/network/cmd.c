/* `vessel network create|ls|inspect|rm` and the peer list. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "base/log.h"
#include "base/util.h"
#include "network/netconf.h"
#include "network/network.h"

int network_peers(const char *store, const char *network,
		  int (*fn)(const char *hostname, const char *ip, void *arg), void *arg,
		  vs_err_t *err)
{
	char dir[4096];
	netconf_path(dir, sizeof(dir), store, "network-attach",
		     network ? network : NETWORK_DEFAULT_NAME);
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : vs_err(err, errno, "network peers: %s", dir);
	struct dirent *de;
	int rc = 0;
	while (rc == 0 && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0)
			continue;
		char path[8192];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		json_t *k = json_load_file(path, 0, NULL);
		const char *host = json_string_value(json_object_get(k, "hostname"));
		/* every address: a dual-stack peer resolves over either family */
		json_t *ips = json_object_get(json_object_get(k, "result"), "ips"), *ip;
		size_t i;
		json_array_foreach(ips, i, ip)
		{
			const char *a = json_string_value(json_object_get(ip, "address"));
			if (!host || !*host || !a || rc != 0)
				continue;
			char addr[64];
			snprintf(addr, sizeof(addr), "%s", a);
			char *slash = strchr(addr, '/');
			if (slash)
				*slash = '\0';
			rc = fn(host, addr, arg);
		}
		json_decref(k);
	}
	closedir(d);
	return rc;
}

/* The subnets of a network's range sets, in order (IPv4 first when it has one). */
static json_t *conf_subnets(json_t *c)
{
	json_t *ipam = json_object_get(json_array_get(json_object_get(c, "plugins"), 0), "ipam");
	json_t *out = json_array(), *set;
	size_t i;
	json_array_foreach(json_object_get(ipam, "ranges"), i, set)
	{
		json_t *s = json_object_get(json_array_get(set, 0), "subnet");
		if (json_is_string(s))
			json_array_append(out, s);
	}
	return out;
}

static int cmd_ls(const char *store, vs_err_t *err)
{
	/* the default network is listed from the first use on */
	json_t *def = netconf_load(store, NULL, err);
	if (!def)
		return -1;
	json_decref(def);
	char dir[4096];
	netconf_path(dir, sizeof(dir), store, "networks", NULL);
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort);
	if (n < 0)
		return vs_err(err, errno, "network ls: %s", dir);
	printf("%-20s %-18s %s\n", "NAME", "SUBNETS", "CONTAINERS");
	for (int i = 0; i < n; i++) {
		char *dot = strstr(names[i]->d_name, ".conflist");
		if (dot && dot[9] == '\0') {
			*dot = '\0';
			json_t *c = netconf_load(store, names[i]->d_name, NULL);
			int att = netconf_attached(store, names[i]->d_name, NULL);
			json_t *subs = conf_subnets(c), *sub;
			char list[256] = "";
			size_t j, used = 0;
			json_array_foreach(subs, j, sub)
			{
				int w = snprintf(list + used, sizeof(list) - used, "%s%s",
						 j ? "," : "", json_string_value(sub));
				if (w < 0 || (size_t)w >= sizeof(list) - used)
					break;
				used += (size_t)w;
			}
			json_decref(subs);
			printf("%-20s %-18s %d\n", names[i]->d_name, *list ? list : "-",
			       att < 0 ? 0 : att);
			json_decref(c);
		}
		free(names[i]);
	}
	free(names);
	return 0;
}

static int cmd_inspect(const char *store, const char *name, vs_err_t *err)
{
	json_t *c = netconf_load(store, name, err);
	if (!c)
		return -1;
	int att = netconf_attached(store, name, err);
	if (att < 0) {
		json_decref(c);
		return -1;
	}
	/* subnet: the first one, as before networks were dual-stack */
	json_t *subs = conf_subnets(c);
	json_t *o = json_pack("{s:s, s:O?, s:o, s:i, s:O}", "name", name, "subnet",
			      json_array_get(subs, 0), "subnets", subs, "containers", att,
			      "conflist", c);
	json_dumpf(o, stdout, JSON_INDENT(2));
	putchar('\n');
	json_decref(o);
	json_decref(c);
	return 0;
}

static int cmd_rm(const char *store, const char *name, vs_err_t *err)
{
	json_t *c = netconf_load(store, name, err);
	if (!c)
		return -1;
	json_decref(c);
	int att = netconf_attached(store, name, err);
	if (att < 0)
		return -1;
	if (att > 0)
		return vs_err(err, EBUSY, "network %s: %d container(s) attached", name, att);
	char path[4200];
	netconf_path(path, sizeof(path), store, "networks", name);
	strcat(path, ".conflist");
	if (unlink(path) < 0)
		return vs_err(err, errno, "network %s: removing %s", name, path);
	netconf_path(path, sizeof(path), store, "network-attach", name);
	rmdir(path);
	/* host-local's leases and last-reserved marks: nobody is attached, so none is held,
	 * and a network made again by the name must not find them */
	netconf_path(path, sizeof(path), store, "network-ipam", name);
	if (vs_remove_tree(AT_FDCWD, path, err) < 0)
		return vs_err_wrap(err, "network %s: its leases", name);
	return 0;
}

/* attach/detach/check: the engine's calls from the command line, for scripts and tests.
 * attach makes the netns (STORE/run/netns/ID) and prints the attachment as JSON. */
static int parse_port(const char *s, struct network_port *p)
{
	unsigned h, c;
	char proto[8] = "tcp";
	int n = sscanf(s, "%u:%u/%7s", &h, &c, proto);
	if (n < 2 || h == 0 || h > 65535 || c == 0 || c > 65535 ||
	    (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0))
		return -1;
	*p = (struct network_port){.host_port = (uint16_t)h, .container_port = (uint16_t)c,
				   .protocol = strcmp(proto, "tcp") == 0 ? "tcp" : "udp"};
	return 0;
}

static int cmd_attach(const char *cmd, struct network_attach_req *r, vs_err_t *err)
{
	char ns[4096];
	netconf_path(ns, sizeof(ns), r->store, "run/netns", r->container_id);
	r->netns_path = ns;
	if (strcmp(cmd, "detach") == 0) {
		if (network_detach(r, err) < 0)
			return -1;
		return network_netns_remove(ns, err);
	}
	if (strcmp(cmd, "check") == 0)
		return network_check(r, err);
	if (network_netns_create(r->store, r->container_id, ns, sizeof(ns), err) < 0)
		return -1;
	struct network_attachment a;
	if (network_attach(r, &a, err) < 0) {
		network_netns_remove(ns, NULL);
		return -1;
	}
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "ip", a.ip, "gateway",
			      a.gateway, "ip6", a.ip6, "gateway6", a.gateway6, "mac", a.mac,
			      "dns_server", a.dns_server, "netns", ns);
	json_dumpf(o, stdout, JSON_COMPACT);
	putchar('\n');
	json_decref(o);
	return 0;
}

static const char usage[] =
	"usage: vessel network [--store DIR] create NAME [--subnet CIDR]... [--ipv6]\n"
	"       vessel network [--store DIR] ls\n"
	"       vessel network [--store DIR] inspect NAME\n"
	"       vessel network [--store DIR] rm NAME\n"
	"       vessel network [--store DIR] attach|detach|check NAME ID\n"
	"              [-p HOST:CTR[/tcp|udp]]... [--net-rate BITS_PER_S] [--hostname H]\n";

int network_main(int argc, char **argv, const struct vs_globals *g)
{
	(void)g;
	const char *store = NETWORK_DEFAULT_STORE;
	/* more than a network takes, so the excess is reported by netconf_create's rules */
	const char *subnets[3];
	size_t nsubnets = 0;
	bool ipv6 = false, too_many = false;
	enum { OPT_STORE = 256, OPT_SUBNET, OPT_IPV6 };
	static const struct option opts[] = {{"store", required_argument, NULL, OPT_STORE},
					     {"subnet", required_argument, NULL, OPT_SUBNET},
					     {"ipv6", no_argument, NULL, OPT_IPV6},
					     {"help", no_argument, NULL, 'h'},
					     {0}};
	optind = 1;
	opterr = 0;
	int o;
	while ((o = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		if (o == OPT_STORE)
			store = optarg;
		else if (o == OPT_SUBNET && nsubnets < 3)
			subnets[nsubnets++] = optarg;
		else if (o == OPT_SUBNET)
			too_many = true;
		else if (o == OPT_IPV6)
			ipv6 = true;
		else if (o == 'h') {
			fputs(usage, stdout);
			return 0;
		} else {
			fputs(usage, stderr);
			return 2;
		}
	}
	/* options may also follow the subcommand */
	char *pos[3];
	int npos = 0;
	struct network_port ports[16];
	struct network_attach_req req = {0};
	for (int i = optind; i < argc; i++) {
		if ((strcmp(argv[i], "--subnet") == 0 && i + 1 < argc) ||
		    strncmp(argv[i], "--subnet=", 9) == 0) {
			const char *v = argv[i][8] == '=' ? argv[i] + 9 : argv[++i];
			if (nsubnets < 3)
				subnets[nsubnets++] = v;
			else
				too_many = true;
		} else if (strcmp(argv[i], "--ipv6") == 0)
			ipv6 = true;
		else if (strcmp(argv[i], "--store") == 0 && i + 1 < argc)
			store = argv[++i];
		else if (strcmp(argv[i], "--hostname") == 0 && i + 1 < argc)
			req.hostname = argv[++i];
		else if (strcmp(argv[i], "--net-rate") == 0 && i + 1 < argc) {
			if (vs_parse_size(argv[++i], &req.rate_bps) < 0) {
				fprintf(stderr, "vessel: --net-rate `%s` is not a rate\n", argv[i]);
				return 2;
			}
		} else if (strcmp(argv[i], "-p") == 0 && i + 1 < argc) {
			if (req.nports == 16 || parse_port(argv[++i], &ports[req.nports]) < 0) {
				fprintf(stderr, "vessel: -p `%s`: HOST:CTR[/tcp|udp]\n", argv[i]);
				return 2;
			}
			req.nports++;
		}
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		} else if (npos < 3)
			pos[npos++] = argv[i];
		else
			npos = 4;
	}
	vs_err_t err = NULL;
	int rc;
	const char *sub = npos ? pos[0] : "";
	if (strcmp(sub, "create") == 0 && npos == 2 && too_many)
		rc = vs_err(&err, 0, "network %s: at most one IPv4 and one IPv6 --subnet", pos[1]);
	else if (strcmp(sub, "create") == 0 && npos == 2)
		rc = netconf_create(store, pos[1], subnets, nsubnets, ipv6, &err);
	else if (strcmp(sub, "ls") == 0 && npos == 1)
		rc = cmd_ls(store, &err);
	else if (strcmp(sub, "inspect") == 0 && npos == 2)
		rc = cmd_inspect(store, pos[1], &err);
	else if (strcmp(sub, "rm") == 0 && npos == 2)
		rc = cmd_rm(store, pos[1], &err);
	else if ((strcmp(sub, "attach") == 0 || strcmp(sub, "detach") == 0 ||
		  strcmp(sub, "check") == 0) &&
		 npos == 3) {
		req.store = store, req.network = pos[1], req.container_id = pos[2];
		req.ports = ports;
		rc = cmd_attach(sub, &req, &err);
	}
	else {
		fputs(usage, stderr);
		return 2;
	}
	if (rc < 0) {
		vs_report(err);
		vs_err_free(&err);
		return 1;
	}
	return 0;
}
