#include "oci/netdev.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/json.h"
#include "base/nl.h"
#include "base/util.h"

static bool valid_ifname(const char *s)
{
	return *s && strlen(s) < IFNAMSIZ && strcmp(s, ".") && strcmp(s, "..") &&
	       !strpbrk(s, "/: \t\n");
}

void netdev_free(struct netdev *d, size_t n)
{
	for (size_t i = 0; d && i < n; i++) {
		free(d[i].host_name);
		free(d[i].name);
	}
	free(d);
}

int netdev_parse(json_t *lx, bool has_netns, struct netdev **out, size_t *n, vs_err_t *err)
{
	*out = NULL;
	*n = 0;
	json_t *o = NULL;
	if (vjson_object(lx, "linux", "netDevices", &o, err) < 0)
		return -1;
	if (!o || !json_object_size(o))
		return 0;
	if (!has_netns)
		return vs_err(err, 0,
			      "linux.netDevices: needs a network namespace of the "
			      "container's own in linux.namespaces");
	struct netdev *d = calloc(json_object_size(o), sizeof(*d));
	if (!d)
		return vs_err(err, ENOMEM, "linux.netDevices");
	const char *key;
	json_t *v;
	size_t k = 0;
	json_object_foreach(o, key, v)
	{
		cleanup_free char *path = vjson_join("linux.netDevices", key);
		const char *name = NULL;
		int rc = 0;
		if (!valid_ifname(key))
			rc = vs_err(err, 0, "%s: not an interface name", path);
		else if (!json_is_object(v))
			rc = vs_err(err, 0, "%s: must be an object", path);
		else if (vjson_string(v, path, "name", &name, err) < 0)
			rc = -1;
		else if (name && !valid_ifname(name))
			rc = vs_err(err, 0, "%s.name: not an interface name", path);
		if (rc == 0) {
			d[k].host_name = strdup(key);
			d[k].name = strdup(name && *name ? name : key);
			k++;
			if (!d[k - 1].host_name || !d[k - 1].name)
				rc = vs_err(err, ENOMEM, "%s", path);
		}
		if (rc < 0) {
			netdev_free(d, k);
			return -1;
		}
	}
	for (size_t i = 0; i < k; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(d[i].name, d[j].name) == 0) {
				vs_err(err, 0, "linux.netDevices: `%s` and `%s` would both be `%s`",
				       d[j].host_name, d[i].host_name, d[i].name);
				netdev_free(d, k);
				return -1;
			}
	*out = d;
	*n = k;
	return 0;
}

static int move_one(int sock, const struct netdev *d, int netns_fd, vs_err_t *err)
{
	unsigned idx = if_nametoindex(d->host_name);
	if (!idx)
		return vs_err(err, errno, "linux.netDevices.%s: no such interface on the host",
			      d->host_name);
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = (int)idx};
	struct nl_msg m;
	nl_init(&m, RTM_NEWLINK, 0, &ifi, sizeof(ifi));
	nl_put_u32(&m, IFLA_NET_NS_FD, (uint32_t)netns_fd);
	/* the kernel renames it as it moves it: no moment with a clashing name inside */
	nl_put_str(&m, IFLA_IFNAME, d->name);
	int r = nl_request(sock, &m);
	if (r < 0)
		return vs_err(err, -r, "linux.netDevices.%s: move into the container as `%s`",
			      d->host_name, d->name);
	return 0;
}

int netdev_move_all(const struct netdev *d, size_t n, int netns_fd, vs_err_t *err)
{
	if (!n)
		return 0;
	cleanup_close int sock = nl_open(err);
	if (sock < 0)
		return vs_err_wrap(err, "linux.netDevices");
	for (size_t i = 0; i < n; i++)
		if (move_one(sock, &d[i], netns_fd, err) < 0)
			return -1;
	return 0;
}
