/* Which plugins of a chain sit out an attachment (cni_plugin_idle). */
#include <criterion/criterion.h>
#include <jansson.h>

#include "network/plugin.h"

static bool idle(const char *conf, size_t nports, uint64_t rate)
{
	json_error_t je;
	json_t *p = json_loads(conf, 0, &je);
	cr_assert(p, "%s", je.text);
	bool r = cni_plugin_idle(p, nports, rate);
	json_decref(p);
	return r;
}

Test(cni_idle, only_known_plugins_without_work_sit_out)
{
	cr_assert(idle("{\"type\": \"portmap\", \"capabilities\": {\"portMappings\": true}}", 0, 0));
	cr_assert(!idle("{\"type\": \"portmap\", \"capabilities\": {\"portMappings\": true}}", 1, 0));
	cr_assert(!idle("{\"type\": \"portmap\", \"snat\": false}", 0, 0), "a setting: it runs");
	cr_assert(idle("{\"type\": \"bandwidth\", \"capabilities\": {\"bandwidth\": true}}", 3, 0));
	cr_assert(!idle("{\"type\": \"bandwidth\", \"capabilities\": {\"bandwidth\": true}}", 0, 1));
	cr_assert(!idle("{\"type\": \"bandwidth\", \"ingressRate\": 1000}", 0, 0),
		  "a static rate in the config is work");
	cr_assert(idle("{\"type\": \"tuning\"}", 0, 0));
	cr_assert(!idle("{\"type\": \"tuning\", \"sysctl\": {\"net.ipv4.conf.eth0.arp_ignore\": "
			"\"1\"}}",
			0, 0));
	cr_assert(!idle("{\"type\": \"bridge\"}", 0, 0));
	cr_assert(!idle("{\"type\": \"firewall\"}", 0, 0));
	cr_assert(!idle("{\"capabilities\": {}}", 0, 0), "no type: not ours to judge");
}
