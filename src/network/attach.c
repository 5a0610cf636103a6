/* The CNI chain of a network: ADD in order with prevResult chained, DEL in reverse
 * with the kept result, CHECK; results kept in STORE/network-attach/NET/ID.json. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "network/cni_result.h"
#include "network/inet6.h"
#include "network/netconf.h"
#include "network/network.h"
#include "network/plugin.h"

static const char *net_name(const struct network_attach_req *r)
{
	return r->network ? r->network : NETWORK_DEFAULT_NAME;
}

static int kept_path(const struct network_attach_req *r, char *buf, size_t size, vs_err_t *err)
{
	const char *id = r->container_id;
	if (!id || !*id || strchr(id, '/') || id[0] == '.')
		return vs_err(err, 0, "network %s: `%s` is not a container id", net_name(r),
			      id ? id : "");
	char dir[4096];
	netconf_path(dir, sizeof(dir), r->store, "network-attach", net_name(r));
	snprintf(buf, size, "%s/%s.json", dir, id);
	return 0;
}

/* The runtimeConfig a plugin asked for through its capabilities. */
static json_t *runtime_config(json_t *plugin, json_t *ports, uint64_t rate)
{
	json_t *caps = json_object_get(plugin, "capabilities");
	json_t *rc = json_object();
	if (json_is_true(json_object_get(caps, "portMappings")) && json_array_size(ports))
		json_object_set(rc, "portMappings", ports);
	if (json_is_true(json_object_get(caps, "bandwidth")) && rate) {
		/* the burst must hold at least a packet per tick; a tenth of a second of
		 * traffic is what podman and the plugin's docs use */
		json_int_t burst = (json_int_t)(rate / 10 > 100000 ? rate / 10 : 100000);
		json_object_set_new(rc, "bandwidth",
				    json_pack("{s:I, s:I, s:I, s:I}", "ingressRate", (json_int_t)rate,
					      "ingressBurst", burst, "egressRate", (json_int_t)rate,
					      "egressBurst", burst));
	}
	return rc;
}

static char *plugin_config(json_t *conf, json_t *plugin, json_t *prev, json_t *ports, uint64_t rate)
{
	json_t *c = json_deep_copy(plugin);
	json_object_del(c, "capabilities");
	json_object_set(c, "cniVersion", json_object_get(conf, "cniVersion"));
	json_object_set(c, "name", json_object_get(conf, "name"));
	if (prev)
		json_object_set(c, "prevResult", prev);
	json_t *rc = runtime_config(plugin, ports, rate);
	if (json_object_size(rc))
		json_object_set(c, "runtimeConfig", rc);
	json_decref(rc);
	char *s = json_dumps(c, JSON_COMPACT);
	json_decref(c);
	return s;
}

/* Runs one plugin of the chain; *result (when asked) gets its parsed output. */
static int run_plugin(const struct network_attach_req *r, json_t *conf, json_t *plugin,
		      const char *cmd, json_t *prev, json_t *ports, uint64_t rate, json_t **result,
		      vs_err_t *err)
{
	const char *type = json_string_value(json_object_get(plugin, "type"));
	if (!type)
		return vs_err(err, 0, "network %s: a plugin without a type", net_name(r));
	char *cfg = plugin_config(conf, plugin, prev, ports, rate);
	if (!cfg)
		return vs_err(err, ENOMEM, "network %s: plugin %s config", net_name(r), type);
	struct cni_call call = {.command = cmd,
				.container_id = r->container_id,
				.netns = r->netns_path,
				.ifname = r->ifname ? r->ifname : "eth0"};
	char *out = NULL;
	size_t len = 0;
	int rc = cni_plugin_run(type, &call, cfg, &out, &len, err);
	free(cfg);
	if (rc < 0)
		return vs_err_wrap(err, "network %s", net_name(r));
	if (result) {
		json_error_t je;
		*result = json_loadb(out, len, 0, &je);
		if (!*result)
			rc = vs_err(err, 0, "network %s: plugin %s: %s result is not JSON: %s",
				    net_name(r), type, cmd, je.text);
	}
	free(out);
	return rc;
}

static json_t *ports_json(const struct network_attach_req *r)
{
	json_t *a = json_array();
	for (size_t i = 0; i < r->nports; i++) {
		const struct network_port *p = &r->ports[i];
		json_t *o = json_pack("{s:i, s:i, s:s}", "hostPort", p->host_port, "containerPort",
				      p->container_port, "protocol", p->protocol ? p->protocol : "tcp");
		if (p->host_ip)
			json_object_set_new(o, "hostIP", json_string(p->host_ip));
		json_array_append_new(a, o);
	}
	return a;
}

/* DEL through the chain in reverse, every plugin tried; the first error returned. */
static int del_chain(const struct network_attach_req *r, json_t *conf, json_t *prev, json_t *ports,
		     uint64_t rate, vs_err_t *err)
{
	json_t *plugins = json_object_get(conf, "plugins");
	int rc = 0;
	for (size_t i = json_array_size(plugins); i-- > 0;) {
		if (cni_plugin_idle(json_array_get(plugins, i), json_array_size(ports), rate))
			continue;
		vs_err_t e = NULL;
		if (run_plugin(r, conf, json_array_get(plugins, i), "DEL", prev, ports, rate, NULL,
			       &e) < 0) {
			if (rc == 0) {
				rc = -1;
				if (err)
					*err = e, e = NULL;
			}
			vs_err_free(&e);
		}
	}
	return rc;
}

int network_attach(const struct network_attach_req *r, struct network_attachment *out,
		   vs_err_t *err)
{
	char kept[8192];
	if (kept_path(r, kept, sizeof(kept), err) < 0)
		return -1;
	if (access(kept, F_OK) == 0)
		return vs_err(err, EEXIST, "network %s: container %s is attached", net_name(r),
			      r->container_id);
	json_t *conf = netconf_load(r->store, r->network, err);
	if (!conf)
		return -1;
	json_t *ports = ports_json(r), *prev = NULL, *plugins = json_object_get(conf, "plugins");
	int rc = -1;
	for (size_t i = 0; i < json_array_size(plugins); i++) {
		if (cni_plugin_idle(json_array_get(plugins, i), r->nports, r->rate_bps))
			continue;
		json_t *res = NULL;
		if (run_plugin(r, conf, json_array_get(plugins, i), "ADD", prev, ports, r->rate_bps,
			       &res, err) < 0) {
			/* the spec: a failed ADD is undone by a DEL of the whole chain */
			del_chain(r, conf, prev, ports, r->rate_bps, NULL);
			goto out;
		}
		json_decref(prev);
		prev = res;
	}
	char *text = json_dumps(prev, JSON_COMPACT);
	if (!text || cni_result_parse(text, strlen(text), out, err) < 0) {
		free(text);
		vs_err_wrap(err, "network %s", net_name(r));
		del_chain(r, conf, prev, ports, r->rate_bps, NULL);
		goto out;
	}
	free(text);
	/* the bridge's IPv6 gateway address goes through DAD (a second or two) after the
	 * bridge plugin adds it, and a port published on it or the container's default
	 * route through it fails until then; the plugin settles only the container's side */
	if (out->gateway6[0] && !inet6_wait_usable(out->gateway6, 5000))
		vs_warn("network %s: the gateway %s is not usable yet (IPv6 DAD)", net_name(r),
			out->gateway6);
	char dir[4096];
	netconf_path(dir, sizeof(dir), r->store, "network-attach", net_name(r));
	json_t *k = json_pack("{s:O, s:s, s:s, s:s, s:O, s:I}", "result", prev, "hostname",
			      r->hostname ? r->hostname : "", "netns",
			      r->netns_path ? r->netns_path : "", "ifname",
			      r->ifname ? r->ifname : "eth0", "ports", ports, "rate",
			      (json_int_t)r->rate_bps);
	char tmp[8300];
	snprintf(tmp, sizeof(tmp), "%s.tmp", kept);
	if (vs_mkdir_p(dir, 0700, err) < 0 || json_dump_file(k, tmp, 0) < 0 ||
	    rename(tmp, kept) < 0) {
		if (!err || !*err)
			vs_err(err, errno, "network %s: keeping %s", net_name(r), kept);
		unlink(tmp);
		json_decref(k);
		del_chain(r, conf, prev, ports, r->rate_bps, NULL);
		goto out;
	}
	json_decref(k);
	rc = 0;
out:
	json_decref(prev);
	json_decref(ports);
	json_decref(conf);
	return rc;
}

int network_detach(const struct network_attach_req *r, vs_err_t *err)
{
	char kept[8192];
	if (kept_path(r, kept, sizeof(kept), err) < 0)
		return -1;
	if (access(kept, F_OK) < 0)
		return 0;
	json_t *k = vjson_load_file(kept, 1 << 20, err);
	if (!k)
		return -1;
	json_t *conf = netconf_load(r->store, r->network, err);
	int rc = -1;
	if (conf) {
		json_int_t rate = json_integer_value(json_object_get(k, "rate"));
		rc = del_chain(r, conf, json_object_get(k, "result"), json_object_get(k, "ports"),
			       rate > 0 ? (uint64_t)rate : 0, err);
		if (rc == 0 && unlink(kept) < 0 && errno != ENOENT)
			rc = vs_err(err, errno, "network %s: removing %s", net_name(r), kept);
	}
	json_decref(conf);
	json_decref(k);
	return rc;
}

int network_check(const struct network_attach_req *r, vs_err_t *err)
{
	char kept[8192];
	if (kept_path(r, kept, sizeof(kept), err) < 0)
		return -1;
	json_t *k = vjson_load_file(kept, 1 << 20, err);
	if (!k)
		return vs_err_wrap(err, "network %s: container %s is not attached", net_name(r),
				   r->container_id);
	json_t *conf = netconf_load(r->store, r->network, err);
	int rc = conf ? 0 : -1;
	json_t *plugins = json_object_get(conf, "plugins");
	json_int_t rate = json_integer_value(json_object_get(k, "rate"));
	json_t *ports = json_object_get(k, "ports");
	for (size_t i = 0; rc == 0 && i < json_array_size(plugins); i++)
		if (!cni_plugin_idle(json_array_get(plugins, i), json_array_size(ports),
				     rate > 0 ? (uint64_t)rate : 0))
			rc = run_plugin(r, conf, json_array_get(plugins, i), "CHECK",
					json_object_get(k, "result"), ports,
					rate > 0 ? (uint64_t)rate : 0, NULL, err);
	json_decref(conf);
	json_decref(k);
	return rc;
}
