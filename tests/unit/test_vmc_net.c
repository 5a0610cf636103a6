/* The network a VM-isolated container's guest gets (src/vmc/net_msg.c): what the host
 * writes the agent reads back the same, and what a hostile or confused host could send is
 * refused with the field it is about, before any of it reaches the guest's kernel. The
 * netlink client's message building (nl.c: nesting, overflow); the requests themselves
 * run in the emulated KVM host's tests (tests/integration/test_vm_containers_net.py). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/pkt_cls.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>

#include <jansson.h>

#include "vmc/net_msg.h"
#include "base/nl.h"

static const char *good =
    "{\"interfaces\": [{\"name\": \"eth0\", \"mac\": \"9a:0b:11:22:33:44\", \"mtu\": 1500,"
    " \"addresses\": [\"10.88.0.5/16\", \"fd00::5/64\"]}],"
    " \"routes\": [{\"dst\": \"0.0.0.0/0\", \"gateway\": \"10.88.0.1\", \"dev\": \"eth0\","
    " \"metric\": 0}, {\"dst\": \"fd00:1::/64\", \"dev\": \"eth0\", \"metric\": 1024}]}";

static char *refusal(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);
	cr_assert(j, "bad test JSON: %s", text);
	struct vmc_net n;
	vs_err_t err = NULL;
	int rc = vmc_net_from_json(j, &n, &err);
	json_decref(j);
	if (rc == 0)
		return NULL;
	cr_assert(err && err->msg[0]);
	char *m = strdup(err->msg);
	vs_err_free(&err);
	return m;
}

Test(vmc_net, parses_and_round_trips)
{
	json_t *j = json_loads(good, 0, NULL);
	struct vmc_net n;
	vs_err_t err = NULL;
	cr_assert_eq(vmc_net_from_json(j, &n, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(n.nifaces, 1);
	cr_assert_str_eq(n.ifaces[0].name, "eth0");
	uint8_t mac[6] = {0x9a, 0x0b, 0x11, 0x22, 0x33, 0x44};
	cr_assert_arr_eq(n.ifaces[0].mac, mac, 6);
	cr_assert_eq(n.ifaces[0].mtu, 1500);
	cr_assert_eq(n.ifaces[0].naddrs, 2);
	cr_assert_eq(n.ifaces[0].addrs[0].family, AF_INET);
	cr_assert_eq(n.ifaces[0].addrs[0].prefix, 16);
	uint8_t v4[4] = {10, 88, 0, 5};
	cr_assert_arr_eq(n.ifaces[0].addrs[0].addr, v4, 4);
	cr_assert_eq(n.ifaces[0].addrs[1].family, AF_INET6);
	cr_assert_eq(n.nroutes, 2);
	cr_assert(n.routes[0].has_gateway && n.routes[0].dst_len == 0);
	cr_assert(!n.routes[1].has_gateway && n.routes[1].metric == 1024);

	json_t *back = vmc_net_to_json(&n);
	cr_assert(json_equal(back, j), "%s", json_dumps(back, 0));
	json_decref(back);
	json_decref(j);
}

Test(vmc_net, refuses_what_the_kernel_must_not_see)
{
	static const struct {
		const char *json, *field;
	} bad[] = {
	    {"[]", "net:"},
	    {"{\"interfaces\": [], \"routes\": {}}", "net:"},
	    {"{\"interfaces\": [1], \"routes\": []}", "interfaces[0]"},
	    {"{\"interfaces\": [{\"name\": \"a/b\", \"mac\": \"02:00:00:00:00:01\", \"mtu\": 1500, "
	     "\"addresses\": []}], \"routes\": []}",
	     "interfaces[0].name"},
	    {"{\"interfaces\": [{\"name\": \"0123456789abcdef\", \"mac\": \"02:00:00:00:00:01\", "
	     "\"mtu\": 1500, \"addresses\": []}], \"routes\": []}",
	     "interfaces[0].name"},
	    {"{\"interfaces\": [{\"name\": \"e\\u0001\", \"mac\": \"02:00:00:00:00:01\", \"mtu\": "
	     "1500, \"addresses\": []}], \"routes\": []}",
	     "interfaces[0].name"},
	    {"{\"interfaces\": [{\"name\": \"eth0\", \"mac\": \"01:00:5e:00:00:01\", \"mtu\": "
	     "1500, "
	     "\"addresses\": []}], \"routes\": []}",
	     "interfaces[0].mac"},
	    {"{\"interfaces\": [{\"name\": \"eth0\", \"mac\": \"00:00:00:00:00:00\", \"mtu\": "
	     "1500, "
	     "\"addresses\": []}], \"routes\": []}",
	     "interfaces[0].mac"},
	    {"{\"interfaces\": [{\"name\": \"eth0\", \"mac\": \"02:00:00:00:00:01x\", \"mtu\": "
	     "1500, "
	     "\"addresses\": []}], \"routes\": []}",
	     "interfaces[0].mac"},
	    {"{\"interfaces\": [{\"name\": \"eth0\", \"mac\": \"02:00:00:00:00:01\", \"mtu\": 67, "
	     "\"addresses\": []}], \"routes\": []}",
	     "interfaces[0].mtu"},
	    {"{\"interfaces\": [{\"name\": \"eth0\", \"mac\": \"02:00:00:00:00:01\", \"mtu\": "
	     "65536, "
	     "\"addresses\": []}], \"routes\": []}",
	     "interfaces[0].mtu"},
	    {"{\"interfaces\": [{\"name\": \"eth0\", \"mac\": \"02:00:00:00:00:01\", \"mtu\": "
	     "1500, "
	     "\"addresses\": [\"10.0.0.1/33\"]}], \"routes\": []}",
	     "addresses[0]"},
	    {"{\"interfaces\": [{\"name\": \"eth0\", \"mac\": \"02:00:00:00:00:01\", \"mtu\": "
	     "1500, "
	     "\"addresses\": [\"10.0.0.1\"]}], \"routes\": []}",
	     "addresses[0]"},
	    {"{\"interfaces\": [{\"name\": \"eth0\", \"mac\": \"02:00:00:00:00:01\", \"mtu\": "
	     "1500, "
	     "\"addresses\": [\"fd00::1/129\"]}], \"routes\": []}",
	     "addresses[0]"},
	    {"{\"interfaces\": [{\"name\": \"eth0\", \"mac\": \"02:00:00:00:00:01\", \"mtu\": "
	     "1500, "
	     "\"addresses\": [\"10.0.0.1/-1\"]}], \"routes\": []}",
	     "addresses[0]"},
	    {"{\"interfaces\": [{\"name\": \"eth0\", \"mac\": \"02:00:00:00:00:01\", \"mtu\": "
	     "1500, "
	     "\"addresses\": [\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"]}], "
	     "\"routes\": []}",
	     "addresses: not an array of at most"},
	    {"{\"interfaces\": [{\"name\": \"eth0\", \"mac\": \"02:00:00:00:00:01\", \"mtu\": "
	     "1500, "
	     "\"addresses\": []}, {\"name\": \"eth0\", \"mac\": \"02:00:00:00:00:02\", \"mtu\": "
	     "1500, "
	     "\"addresses\": []}], \"routes\": []}",
	     "interfaces[1]"},
	    {"{\"interfaces\": [{\"name\": \"eth0\", \"mac\": \"02:00:00:00:00:01\", \"mtu\": "
	     "1500, "
	     "\"addresses\": []}], \"routes\": [{\"dst\": \"0.0.0.0/0\", \"dev\": \"eth1\"}]}",
	     "routes[0].dev"},
	    {"{\"interfaces\": [{\"name\": \"eth0\", \"mac\": \"02:00:00:00:00:01\", \"mtu\": "
	     "1500, "
	     "\"addresses\": []}], \"routes\": [{\"dst\": \"0.0.0.0/0\", \"dev\": \"eth0\", "
	     "\"gateway\": \"fd00::1\"}]}",
	     "routes[0].gateway"},
	    {"{\"interfaces\": [{\"name\": \"eth0\", \"mac\": \"02:00:00:00:00:01\", \"mtu\": "
	     "1500, "
	     "\"addresses\": []}], \"routes\": [{\"dst\": \"0.0.0.0/0\", \"dev\": \"eth0\", "
	     "\"metric\": -1}]}",
	     "routes[0].metric"},
	    {"{\"interfaces\": [{\"name\": \"eth0\", \"mac\": \"02:00:00:00:00:01\", \"mtu\": "
	     "1500, "
	     "\"addresses\": []}], \"routes\": [{\"dst\": \"nonsense/1\", \"dev\": \"eth0\"}]}",
	     "routes[0].dst"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *m = refusal(bad[i].json);
		cr_assert(m, "accepted: %s", bad[i].json);
		cr_assert(strstr(m, bad[i].field), "`%s` does not name %s", m, bad[i].field);
		free(m);
	}
}

Test(vmc_net, at_most_the_maxima)
{
	json_t *j = json_loads(good, 0, NULL);
	json_t *routes = json_object_get(j, "routes");
	while (json_array_size(routes) <= VMC_NET_MAX_ROUTES)
		json_array_append(routes, json_array_get(routes, 0));
	struct vmc_net n;
	vs_err_t err = NULL;
	cr_assert_eq(vmc_net_from_json(j, &n, &err), -1);
	cr_assert(strstr(err->msg, "routes"));
	vs_err_free(&err);
	json_decref(j);
}

Test(vmc_nl, nested_attributes_parse_back)
{
	struct tcmsg t = {.tcm_ifindex = 7};
	struct nl_msg m;
	nl_init(&m, RTM_NEWTFILTER, 0, &t, sizeof(t));
	nl_put_str(&m, TCA_KIND, "u32");
	struct rtattr *opts = nl_nest_begin(&m, TCA_OPTIONS);
	nl_put_u32(&m, 2, 0xdeadbeef);
	struct rtattr *inner = nl_nest_begin(&m, 3);
	nl_put_str(&m, 1, "mirred");
	nl_nest_end(&m, inner);
	nl_nest_end(&m, opts);
	cr_assert(!m.overflow);
	cr_assert_eq(m.h.nlmsg_len % 4, 0);

	const struct rtattr *tb[TCA_MAX + 1];
	cr_assert_eq(nl_parse_attrs(&m.h, sizeof(t), tb, TCA_MAX), 0);
	cr_assert_str_eq(RTA_DATA(tb[TCA_KIND]), "u32");
	cr_assert(tb[TCA_OPTIONS]);
	const struct rtattr *o[4];
	nl_parse_nested(tb[TCA_OPTIONS], o, 3);
	cr_assert(o[2] && *(uint32_t *)RTA_DATA(o[2]) == 0xdeadbeef);
	const struct rtattr *in[2];
	nl_parse_nested(o[3], in, 1);
	cr_assert_str_eq(RTA_DATA(in[1]), "mirred");
	/* the nest covers exactly what was put inside it, up to the message's end */
	cr_assert_eq((const char *)tb[TCA_OPTIONS] + tb[TCA_OPTIONS]->rta_len,
		     m.buf + m.h.nlmsg_len);
}

Test(vmc_nl, overflow_is_refused_not_sent)
{
	struct ifinfomsg ifi = {0};
	struct nl_msg m;
	nl_init(&m, RTM_NEWLINK, 0, &ifi, sizeof(ifi));
	char big[300];
	memset(big, 'x', sizeof(big));
	for (int i = 0; i < 4; i++)
		nl_put(&m, IFLA_IFALIAS, big, sizeof(big));
	cr_assert(m.overflow);
	cr_assert_leq(m.h.nlmsg_len, sizeof(m.buf));
	cr_assert_null(nl_nest_begin(&m, IFLA_LINKINFO));
	/* never reaches the socket (there is none) */
	cr_assert_eq(nl_request(-1, &m), -EMSGSIZE);
}

Test(vmc_nl, short_message_has_no_attributes)
{
	struct nlmsghdr h = {.nlmsg_len = NLMSG_LENGTH(2)};
	const struct rtattr *tb[IFLA_MAX + 1];
	cr_assert_eq(nl_parse_attrs(&h, sizeof(struct ifinfomsg), tb, IFLA_MAX), -1);
}
