#include "vmm/virtio/vsock_spec.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "vmm/config.h"

static int check_cid(uint64_t cid, vs_err_t *err)
{
	if (cid < 3 || cid > UINT32_MAX - 1)
		return vs_err(err, 0,
			      "%llu is not a guest CID (3 to 4294967294: 0-2 are reserved for the "
			      "hypervisor, the loopback and the host)",
			      (unsigned long long)cid);
	return 0;
}

static int set_uds(struct vsock_spec *out, const char *path, size_t len, vs_err_t *err)
{
	if (len == 0)
		return vs_err(err, 0, "an empty path");
	if (len > VSOCK_UDS_MAX)
		return vs_err(err, 0,
			      "`%.*s` is longer than %d bytes (a Unix socket path is 107 at most, "
			      "and `_PORT` is appended for the guest's connections)",
			      (int)len, path, VSOCK_UDS_MAX);
	if (memchr(path, '\0', len))
		return vs_err(err, 0, "a NUL byte in the path");
	memcpy(out->uds, path, len);
	out->uds[len] = '\0';
	return 0;
}

int vsock_spec_parse(const char *spec, struct vsock_spec *out, vs_err_t *err)
{
	*out = (struct vsock_spec){0};
	bool has_cid = false, has_uds = false;
	struct vm_spec_opt o;
	const char *pos = spec;
	int more;
	while ((more = vm_spec_next(spec, &pos, &o, err)) > 0) {
		if (!o.val)
			return vs_err(err, 0, "`%.*s`: expected KEY=VALUE (cid=, uds=)", (int)o.len,
				      o.text);
		const char *val = o.val;
		size_t vlen = o.vlen;
		if (vm_spec_key(&o, "cid")) {
			if (has_cid)
				return vs_err(err, 0, "cid: given twice");
			char buf[24], *e;
			if (vlen == 0 || vlen >= sizeof(buf) || !isdigit((unsigned char)val[0]))
				return vs_err(err, 0, "cid: `%.*s` is not a number", (int)vlen,
					      val);
			memcpy(buf, val, vlen);
			buf[vlen] = '\0';
			errno = 0;
			unsigned long long cid = strtoull(buf, &e, 10);
			if (*e || errno)
				return vs_err(err, 0, "cid: `%s` is not a number", buf);
			if (check_cid(cid, err) < 0)
				return vs_err_wrap(err, "cid");
			out->cid = (uint32_t)cid;
			has_cid = true;
		} else if (vm_spec_key(&o, "uds")) {
			if (has_uds)
				return vs_err(err, 0, "uds: given twice");
			if (set_uds(out, val, vlen, err) < 0)
				return vs_err_wrap(err, "uds");
			has_uds = true;
		} else {
			return vs_err(err, 0, "%.*s: unknown option (cid=, uds=)", (int)o.klen,
				      o.key);
		}
	}
	if (more < 0)
		return -1;
	if (!has_cid)
		return vs_err(err, 0, "cid: missing (use --vsock cid=N,uds=PATH)");
	if (!has_uds)
		return vs_err(err, 0, "uds: missing (use --vsock cid=N,uds=PATH)");
	return 0;
}

int vsock_spec_from_json(json_t *obj, struct vsock_spec *out, vs_err_t *err)
{
	static const char *const keys[] = {"guest_cid", "uds_path", "vsock_id", NULL};
	*out = (struct vsock_spec){0};
	const char *uds = NULL, *id = NULL;
	uint64_t cid = 0;
	if (vm_json_only(obj, keys, err) < 0 ||
	    vjson_require(vjson_uint64(obj, NULL, "guest_cid", &cid, err), NULL, "guest_cid",
			  "an integer", err) < 0 ||
	    vjson_require(vjson_string(obj, NULL, "uds_path", &uds, err), NULL, "uds_path",
			  "a string", err) < 0 ||
	    vjson_string(obj, NULL, "vsock_id", &id, err) < 0)
		return -1;
	/* vsock_id is deprecated in Firecracker and names nothing: one vsock per VM */
	if (check_cid(cid, err) < 0)
		return vs_err_wrap(err, "guest_cid");
	out->cid = (uint32_t)cid;
	if (set_uds(out, uds, strlen(uds), err) < 0)
		return vs_err_wrap(err, "uds_path");
	return 0;
}
