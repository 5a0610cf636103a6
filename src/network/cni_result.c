#include "network/cni_result.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static void copy_str(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

int cni_result_parse(const char *text, size_t len, struct network_attachment *out, vs_err_t *err)
{
	memset(out, 0, sizeof(*out));
	json_error_t je;
	json_t *r = json_loadb(text, len, 0, &je);
	if (!r)
		return vs_err(err, 0, "CNI result: not JSON: %s (line %d)", je.text, je.line);
	int rc = -1;
	json_t *ips = json_object_get(r, "ips");
	/* ip: the first IPv4 entry (else the first of any family), what IPv4-only callers
	 * always had; ip6: the first IPv6 one. The MAC is the interface of ip's entry. */
	json_t *first = NULL, *ip4 = NULL, *ip6 = NULL, *e;
	size_t i;
	json_array_foreach(ips, i, e)
	{
		const char *a = json_string_value(json_object_get(e, "address"));
		if (!a)
			continue;
		bool v6 = strchr(a, ':') != NULL;
		if (v6 && !ip6)
			ip6 = e;
		if (!v6 && !ip4)
			ip4 = e;
		if (!first)
			first = e;
	}
	json_t *ip0 = ip4 ? ip4 : first;
	const char *addr = json_string_value(json_object_get(ip0, "address"));
	if (!json_is_object(r) || !addr) {
		vs_err(err, 0, "CNI result: no ips[].address");
		goto out;
	}
	copy_str(out->ip, sizeof(out->ip), addr);
	copy_str(out->gateway, sizeof(out->gateway),
		 json_string_value(json_object_get(ip0, "gateway")));
	copy_str(out->ip6, sizeof(out->ip6), json_string_value(json_object_get(ip6, "address")));
	copy_str(out->gateway6, sizeof(out->gateway6),
		 json_string_value(json_object_get(ip6, "gateway")));
	/* ips[].interface indexes interfaces[]; a result may omit it, or lie */
	json_t *ifidx = json_object_get(ip0, "interface");
	json_t *ifs = json_object_get(r, "interfaces");
	if (json_is_integer(ifidx) && json_is_array(ifs) && json_integer_value(ifidx) >= 0 &&
	    (size_t)json_integer_value(ifidx) < json_array_size(ifs))
		copy_str(out->mac, sizeof(out->mac),
			 json_string_value(json_object_get(
				 json_array_get(ifs, (size_t)json_integer_value(ifidx)), "mac")));
	json_t *ns = json_object_get(json_object_get(r, "dns"), "nameservers");
	if (json_is_array(ns))
		copy_str(out->dns_server, sizeof(out->dns_server),
			 json_string_value(json_array_get(ns, 0)));
	rc = 0;
out:
	json_decref(r);
	return rc;
}

void cni_error_line(const char *text, size_t len, char *line, size_t size)
{
	json_t *e = json_loadb(text, len, 0, NULL);
	const char *msg = json_string_value(json_object_get(e, "msg"));
	if (msg) {
		const char *details = json_string_value(json_object_get(e, "details"));
		json_int_t code = json_integer_value(json_object_get(e, "code"));
		if (details && *details)
			snprintf(line, size, "%s (%s) [code %lld]", msg, details, (long long)code);
		else
			snprintf(line, size, "%s [code %lld]", msg, (long long)code);
	} else {
		size_t n = 0;
		while (n < len && text[n] != '\n' && text[n] != '\0' && n + 1 < size)
			n++;
		snprintf(line, size, "%.*s", (int)n, len ? text : "");
		if (!*line)
			snprintf(line, size, "no output");
	}
	json_decref(e);
	/* one line: a plugin's msg may carry newlines */
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}
