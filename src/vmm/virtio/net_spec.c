#include "vmm/virtio/net_spec.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "base/json.h"
#include "base/util.h"
#include "vmm/config.h"

/* What the kernel's dev_valid_name() takes, minus `%` (a name template would make the
 * kernel pick the name, and the user could not find their tap). */
static int check_tap_name(const char *name, size_t len, vs_err_t *err)
{
	if (len == 0)
		return vs_err(err, 0, "tap: needs an interface name (tap=NAME)");
	if (len >= IFNAMSIZ)
		return vs_err(err, 0, "tap: `%.*s` is longer than %d characters", (int)len, name,
			      IFNAMSIZ - 1);
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return vs_err(err, 0, "tap: `%.*s` is not an interface name", (int)len, name);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == '/' || c == ':' || c == '%' || isspace(c) || !isprint(c))
			return vs_err(err, 0, "tap: `%.*s`: `%c` cannot be in an interface name",
				      (int)len, name, isprint(c) ? c : '?');
	}
	return 0;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int net_parse_mac(const char *s, uint8_t mac[6], vs_err_t *err)
{
	const char *p = s;
	for (int i = 0; i < 6; i++) {
		int hi = hex_digit(p[0]), lo = hi < 0 ? -1 : hex_digit(p[1]);
		if (lo < 0 || (i < 5 && p[2] != ':') || (i == 5 && p[2] != '\0'))
			return vs_err(err, 0,
				      "mac: `%s` is not a MAC address (use six hex pairs, e.g. "
				      "52:54:00:12:34:56)",
				      s);
		mac[i] = (uint8_t)(hi << 4 | lo);
		p += 3;
	}
	if (mac[0] & 1)
		return vs_err(err, 0,
			      "mac: `%s` is a multicast address (the first byte must be even)", s);
	if (!(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]))
		return vs_err(err, 0, "mac: 00:00:00:00:00:00 is not a usable address");
	return 0;
}

void net_random_mac(uint8_t mac[6])
{
	/* getrandom of 6 bytes cannot be interrupted or short once the pool is up; the
	 * fallback only matters on a host without entropy at boot */
	if (getrandom(mac, 6, 0) != 6)
		memcpy(mac, (uint8_t[6]){0x02, 0x56, 0x53, 0x00, 0x00, 0x01}, 6);
	mac[0] = (uint8_t)((mac[0] & 0xfc) | 0x02); /* locally administered, unicast */
}

int net_spec_parse(const char *spec, struct net_spec *out, vs_err_t *err)
{
	*out = (struct net_spec){0};
	rl_init(&out->rl);
	bool has_tap = false;
	struct vm_spec_opt o;
	const char *pos = spec;
	int more;
	while ((more = vm_spec_next(spec, &pos, &o, err)) > 0) {
		if (!o.val)
			return vs_err(
			    err, 0,
			    "`%.*s`: expected KEY=VALUE (tap=, mac=, bw=, ops=, bw_burst=, "
			    "ops_burst=)",
			    (int)o.len, o.text);
		const char *val = o.val;
		size_t vlen = o.vlen;

		if (vm_spec_key(&o, "tap")) {
			if (has_tap)
				return vs_err(err, 0, "tap: given twice");
			if (check_tap_name(val, vlen, err) < 0)
				return -1;
			memcpy(out->tap, val, vlen);
			has_tap = true;
		} else if (vm_spec_key(&o, "mac")) {
			char buf[32];
			if (out->has_mac)
				return vs_err(err, 0, "mac: given twice");
			if (vlen >= sizeof(buf))
				return vs_err(err, 0, "mac: `%.*s` is not a MAC address", (int)vlen,
					      val);
			memcpy(buf, val, vlen);
			buf[vlen] = '\0';
			if (net_parse_mac(buf, out->mac, err) < 0)
				return -1;
			out->has_mac = true;
		} else {
			int r = rl_parse_ops_option(&out->rl, o.key, o.klen, val, vlen, err);
			if (r < 0)
				return -1;
			if (r == 0)
				return vs_err(err, 0,
					      "%.*s: unknown option (tap=, mac=, bw=, ops=, "
					      "bw_burst=, ops_burst=)",
					      (int)o.klen, o.key);
		}
	}
	if (more < 0)
		return -1;
	if (!has_tap)
		return vs_err(err, 0, "tap: missing (use --net tap=NAME[,mac=MAC])");
	return rl_check_ops(&out->rl, err);
}

int net_spec_from_json(json_t *obj, struct net_spec *out, vs_err_t *err)
{
	static const char *const keys[] = {"iface_id",	      "host_dev_name",	 "guest_mac",
					   "rx_rate_limiter", "tx_rate_limiter", NULL};
	*out = (struct net_spec){0};
	rl_init(&out->rl);
	rl_init(&out->tx_rl);
	if (json_object_get(obj, "mtu"))
		return vs_err(err, 0, "mtu: not supported yet (the guest uses 1500)");
	const char *tap = NULL, *mac = NULL;
	if (vm_json_only(obj, keys, err) < 0 || vm_json_api_id(obj, "iface_id", err) < 0 ||
	    vjson_require(vjson_string(obj, NULL, "host_dev_name", &tap, err), NULL,
			  "host_dev_name", "a string", err) < 0 ||
	    vjson_string(obj, NULL, "guest_mac", &mac, err) < 0 ||
	    vm_json_rate_limiter(obj, "rx_rate_limiter", &out->rl, err) < 0 ||
	    vm_json_rate_limiter(obj, "tx_rate_limiter", &out->tx_rl, err) < 0)
		return -1;
	if (check_tap_name(tap, strlen(tap), err) < 0)
		return vs_err_wrap(err, "host_dev_name");
	memcpy(out->tap, tap, strlen(tap) + 1);
	/* Firecracker's two limiters are each one direction's: rx alone leaves tx free */
	out->has_tx_rl = true;
	if (mac) {
		if (net_parse_mac(mac, out->mac, err) < 0)
			return vs_err_wrap(err, "guest_mac");
		out->has_mac = true;
	}
	return 0;
}

int net_patch_from_json(json_t *obj, struct net_patch *out, vs_err_t *err)
{
	static const char *const keys[] = {"iface_id", "rx_rate_limiter", "tx_rate_limiter", NULL};
	*out = (struct net_patch){0};
	int rx, tx;
	if (vm_json_only(obj, keys, err) < 0 || vm_json_api_id(obj, "iface_id", err) < 0 ||
	    (rx = vm_json_rate_limiter_patch(obj, "rx_rate_limiter", &out->rx, err)) < 0 ||
	    (tx = vm_json_rate_limiter_patch(obj, "tx_rate_limiter", &out->tx, err)) < 0)
		return -1;
	out->has_rx = rx > 0;
	out->has_tx = tx > 0;
	if (!out->has_rx && !out->has_tx)
		return vs_err(err, 0,
			      "nothing to change: give rx_rate_limiter, tx_rate_limiter or both");
	return 0;
}
