/* A container on a named network, through src/network/network.h: the engine makes the
 * netns itself (STORE/run/netns/ID), attaches it before the runtime starts the container
 * in it, and detaches it when the container is stopped or removed. Peers find each other
 * by name through /etc/hosts, rewritten in place whenever one joins or leaves. */
#include <arpa/inet.h>
#include <sys/socket.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "engine/internal.h"
#include "network/network.h"

#define MAX_PORTS 64

static const char *str(json_t *rec, const char *key)
{
	return json_string_value(json_object_get(rec, key));
}

bool engine_net_named(json_t *rec)
{
	const char *net = str(rec, "network");
	return net && strcmp(net, "none") != 0 && strcmp(net, "host") != 0;
}

/* ip_buf holds the host address when there is one (the port keeps a pointer to it). */
static int parse_port(const char *s, struct network_port *p, char *ip_buf, size_t ip_len)
{
	cleanup_free char *copy = strdup(s);
	if (!copy)
		return -1;
	const char *proto = "tcp";
	char *slash = strchr(copy, '/');
	if (slash) {
		*slash = 0;
		if (strcmp(slash + 1, "tcp") != 0 && strcmp(slash + 1, "udp") != 0)
			return -1;
		proto = strcmp(slash + 1, "tcp") == 0 ? "tcp" : "udp";
	}
	/* an IPv6 host address in brackets, as podman takes it: [::1]:8080:80 */
	char *rest = copy, *ip6 = NULL;
	if (copy[0] == '[') {
		char *close = strstr(copy, "]:");
		if (!close)
			return -1;
		*close = 0;
		ip6 = copy + 1;
		rest = close + 2;
	}
	char *parts[3];
	int n = 0;
	for (char *save, *t = strtok_r(rest, ":", &save); t; t = strtok_r(NULL, ":", &save)) {
		if (n == 3)
			return -1;
		parts[n++] = t;
	}
	if (n < 2 || (ip6 && n != 2))
		return -1;
	unsigned long port[2];
	for (int i = 0; i < 2; i++) {
		char *end;
		const char *t = parts[n - 2 + i];
		port[i] = strtoul(t, &end, 10);
		if (*t < '0' || *t > '9' || *end || port[i] == 0 || port[i] > 65535)
			return -1;
	}
	*p = (struct network_port){
	    .host_port = (uint16_t)port[0], .container_port = (uint16_t)port[1], .protocol = proto};
	const char *ip = ip6 ? ip6 : n == 3 ? parts[0] : NULL;
	if (ip) {
		struct in6_addr a;
		if (inet_pton(ip6 ? AF_INET6 : AF_INET, ip, &a) != 1 || strlen(ip) >= ip_len)
			return -1;
		strcpy(ip_buf, ip);
		p->host_ip = ip_buf;
	}
	return 0;
}

int engine_parse_port(const char *s, vs_err_t *err)
{
	struct network_port p;
	char ip[INET6_ADDRSTRLEN];
	if (parse_port(s, &p, ip, sizeof(ip)) < 0)
		return vs_err(
		    err, 0, "-p `%s`: expected [IP:]HOST:CONTAINER[/tcp|udp] ([IPv6] in brackets)",
		    s);
	return 0;
}

int engine_parse_rate(const char *s, uint64_t *bps)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || !(v > 0))
		return -1;
	double mult = 1;
	switch (*end) {
	case 'k':
	case 'K':
		mult = 1e3, end++;
		break;
	case 'm':
	case 'M':
		mult = 1e6, end++;
		break;
	case 'g':
	case 'G':
		mult = 1e9, end++;
		break;
	}
	if (*end && strcmp(end, "bit") != 0)
		return -1;
	v *= mult;
	if (v < 1 || v > 1e12)
		return -1;
	*bps = (uint64_t)v;
	return 0;
}

static void request(const char *store, json_t *rec, struct network_attach_req *r)
{
	json_int_t rate = json_integer_value(json_object_get(rec, "net_rate"));
	*r = (struct network_attach_req){
	    .store = store,
	    .network = str(rec, "network"),
	    .container_id = str(rec, "id"),
	    .netns_path = str(rec, "netns"),
	    .rate_bps = rate > 0 ? (uint64_t)rate : 0,
	    /* peers know a container by its name */
	    .hostname = str(rec, "name"),
	};
}

static int attach_named(const char *store, json_t *rec, vs_err_t *err)
{
	json_t *pspecs = json_object_get(rec, "ports");
	size_t nports = json_array_size(pspecs);
	if (nports > MAX_PORTS)
		return vs_err(err, 0, "-p: at most %d ports", MAX_PORTS);
	struct network_port ports[MAX_PORTS];
	char ips[MAX_PORTS][INET6_ADDRSTRLEN];
	for (size_t i = 0; i < nports; i++)
		if (parse_port(json_string_value(json_array_get(pspecs, i)), &ports[i], ips[i],
			       sizeof(ips[i])) < 0)
			return vs_err(err, 0, "-p `%s`: not a port mapping",
				      json_string_value(json_array_get(pspecs, i)));
	struct network_attach_req r;
	request(store, rec, &r);
	r.ports = ports;
	r.nports = nports;
	struct network_attachment a;
	if (network_attach(&r, &a, err) < 0)
		return -1;
	/* the record keeps addresses, not CIDRs */
	a.ip[strcspn(a.ip, "/")] = '\0';
	a.ip6[strcspn(a.ip6, "/")] = '\0';
	json_object_set_new(rec, "ip", json_string(a.ip));
	json_object_set_new(rec, "gateway", json_string(a.gateway));
	/* a dual-stack network's second address (an IPv6-only one's is ip already) */
	if (*a.ip6 && strcmp(a.ip6, a.ip) != 0) {
		json_object_set_new(rec, "ip6", json_string(a.ip6));
		json_object_set_new(rec, "gateway6", json_string(a.gateway6));
	}
	return 0;
}

int engine_net_attach(const char *store, json_t *rec, vs_err_t *err)
{
	if (strcmp(str(rec, "network"), "host") == 0)
		return 0;
	/* none has a netns of the engine's too: only lo, up */
	char ns[4096];
	if (network_netns_create(store, str(rec, "id"), ns, sizeof(ns), err) < 0)
		return -1;
	json_object_set_new(rec, "netns", json_string(ns));
	if (engine_net_named(rec) && attach_named(store, rec, err) < 0) {
		network_netns_remove(ns, NULL);
		json_object_del(rec, "netns");
		return -1;
	}
	return 0;
}

int engine_net_detach(const char *store, json_t *rec, vs_err_t *err)
{
	const char *ns = str(rec, "netns");
	if (!ns || access(ns, F_OK) < 0)
		return 0;
	if (!engine_net_named(rec))
		return network_netns_remove(ns, err);
	struct network_attach_req r;
	request(store, rec, &r);
	if (network_detach(&r, err) < 0 || network_netns_remove(ns, err) < 0)
		return vs_err_wrap(err, "container %s", str(rec, "name"));
	vs_err_t e2 = NULL;
	if (engine_refresh_peers(store, r.network, &e2) < 0) {
		vs_warn("%s", e2->msg);
		vs_err_free(&e2);
	}
	return 0;
}

struct hosts_text {
	char *text;
	const char *self;
};

static int add_peer(const char *hostname, const char *ip, void *arg)
{
	struct hosts_text *h = arg;
	if (strcmp(hostname, h->self) == 0)
		return 0;
	char *next;
	if (asprintf(&next, "%s%s\t%s\n", h->text, ip, hostname) < 0)
		return -1;
	free(h->text);
	h->text = next;
	return 0;
}

int engine_write_hosts(const char *store, json_t *rec, vs_err_t *err)
{
	const char *name = str(rec, "name"), *hostname = str(rec, "hostname");
	const char *ip = str(rec, "ip"), *ip6 = str(rec, "ip6");
	cleanup_free char *path = engine_dir(store, str(rec, "id"), "hosts");
	cleanup_free char *names = NULL;
	struct hosts_text h = {.self = name};
	/* itself at each of its addresses: a dual-stack container has an IPv6 line too */
	if (!path ||
	    asprintf(&names, "%s%s%s", hostname, strcmp(hostname, name) ? " " : "",
		     strcmp(hostname, name) ? name : "") < 0 ||
	    asprintf(&h.text,
		     "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n",
		     ip ? ip : "127.0.1.1", names) < 0)
		return vs_err(err, ENOMEM, "hosts of %s", name);
	if (ip6) {
		char *next;
		if (asprintf(&next, "%s%s\t%s\n", h.text, ip6, names) < 0) {
			free(h.text);
			return vs_err(err, ENOMEM, "hosts of %s", name);
		}
		free(h.text);
		h.text = next;
	}
	int rc = 0;
	if (engine_net_named(rec) &&
	    network_peers(store, str(rec, "network"), add_peer, &h, err) != 0)
		rc = err && *err ? -1 : vs_err(err, ENOMEM, "hosts of %s", name);
	/* in place, never renamed: the running container has this inode bind-mounted */
	if (rc == 0)
		rc = vs_write_file(path, h.text, strlen(h.text), err);
	free(h.text);
	return rc < 0 ? vs_err_wrap(err, "container %s", name) : 0;
}

int engine_refresh_peers(const char *store, const char *network, vs_err_t *err)
{
	json_t *all = engine_records(store, err);
	if (!all)
		return -1;
	size_t i;
	json_t *r;
	int rc = 0;
	json_array_foreach(all, i, r)
	{
		const char *net = str(r, "network"), *ns = str(r, "netns");
		if (!net || strcmp(net, network) != 0 || !ns || access(ns, F_OK) < 0)
			continue;
		if (engine_write_hosts(store, r, err) < 0) {
			rc = -1;
			break;
		}
	}
	json_decref(all);
	return rc;
}
