/* What vessel takes from a CNI result (cni_result_parse): a dual-stack one too. */
#include <criterion/criterion.h>
#include <string.h>

#include "network/cni_result.h"

static struct network_attachment parse(const char *text)
{
	struct network_attachment a;
	vs_err_t err = NULL;
	cr_assert(cni_result_parse(text, strlen(text), &a, &err) == 0, "%s", err ? err->msg : "");
	return a;
}

Test(cni_result, dual_stack_gives_both_addresses)
{
	/* host-local's order follows the range sets; IPv6 first must not change ip */
	struct network_attachment a = parse(
	    "{\"cniVersion\": \"1.0.0\", \"interfaces\": [{\"name\": \"br\", \"mac\": "
	    "\"aa:aa:aa:aa:aa:aa\"}, {\"name\": \"eth0\", \"mac\": \"02:00:00:00:00:01\", "
	    "\"sandbox\": \"/x\"}], \"ips\": [{\"interface\": 1, \"address\": "
	    "\"fd12:3456:789a::2/64\", \"gateway\": \"fd12:3456:789a::1\"}, {\"interface\": 1, "
	    "\"address\": \"10.1.0.2/16\", \"gateway\": \"10.1.0.1\"}]}");
	cr_assert_str_eq(a.ip, "10.1.0.2/16");
	cr_assert_str_eq(a.gateway, "10.1.0.1");
	cr_assert_str_eq(a.ip6, "fd12:3456:789a::2/64");
	cr_assert_str_eq(a.gateway6, "fd12:3456:789a::1");
	cr_assert_str_eq(a.mac, "02:00:00:00:00:01");
}

Test(cni_result, ipv4_only_and_ipv6_only)
{
	struct network_attachment a =
	    parse("{\"ips\": [{\"address\": \"10.1.0.2/16\", \"gateway\": \"10.1.0.1\"}]}");
	cr_assert_str_eq(a.ip, "10.1.0.2/16");
	cr_assert_str_eq(a.ip6, "");
	a = parse("{\"ips\": [{\"address\": \"fd00::5/64\"}]}");
	cr_assert_str_eq(a.ip, "fd00::5/64", "no IPv4: ip is the first address");
	cr_assert_str_eq(a.ip6, "fd00::5/64");
}

Test(cni_result, no_address_is_an_error)
{
	struct network_attachment a;
	vs_err_t err = NULL;
	const char *t = "{\"ips\": [{\"gateway\": \"10.1.0.1\"}, 7]}";
	cr_assert(cni_result_parse(t, strlen(t), &a, &err) < 0);
	cr_assert(strstr(err->msg, "ips"), "%s", err->msg);
	vs_err_free(&err);
}
