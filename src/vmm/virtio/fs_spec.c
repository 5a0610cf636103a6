#include "vmm/virtio/fs_spec.h"

#include <stdbool.h>
#include <string.h>

#include "base/json.h"
#include "vmm/config.h"

/* The guest mounts by tag (`mount -t virtiofs TAG /mnt`): a word it can type. */
static int set_tag(struct fs_spec *out, const char *tag, size_t len, vs_err_t *err)
{
	if (len == 0)
		return vs_err(err, 0, "an empty tag");
	if (len > FS_TAG_MAX)
		return vs_err(err, 0, "`%.*s` is %zu bytes, longer than virtio-fs's %d", (int)len,
			      tag, len, FS_TAG_MAX);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)tag[i] <= ' ' || (unsigned char)tag[i] >= 0x7f)
			return vs_err(err, 0, "`%.*s`: a space, control or non-ASCII byte",
				      (int)len, tag);
	memcpy(out->tag, tag, len);
	out->tag[len] = '\0';
	return 0;
}

static int set_socket(struct fs_spec *out, const char *path, size_t len, vs_err_t *err)
{
	if (len == 0)
		return vs_err(err, 0, "an empty path");
	if (len > FS_SOCKET_MAX)
		return vs_err(err, 0, "`%.*s` is longer than a Unix socket path (%d bytes)",
			      (int)len, path, FS_SOCKET_MAX);
	if (memchr(path, '\0', len))
		return vs_err(err, 0, "a NUL byte in the path");
	memcpy(out->socket, path, len);
	out->socket[len] = '\0';
	return 0;
}

int fs_spec_parse(const char *spec, struct fs_spec *out, vs_err_t *err)
{
	*out = (struct fs_spec){0};
	bool has_tag = false, has_socket = false;
	struct vm_spec_opt o;
	const char *pos = spec;
	int more;
	while ((more = vm_spec_next(spec, &pos, &o, err)) > 0) {
		if (!o.val)
			return vs_err(err, 0, "`%.*s`: expected KEY=VALUE (tag=, socket=)",
				      (int)o.len, o.text);
		if (vm_spec_key(&o, "tag")) {
			if (has_tag)
				return vs_err(err, 0, "tag: given twice");
			if (set_tag(out, o.val, o.vlen, err) < 0)
				return vs_err_wrap(err, "tag");
			has_tag = true;
		} else if (vm_spec_key(&o, "socket")) {
			if (has_socket)
				return vs_err(err, 0, "socket: given twice");
			if (set_socket(out, o.val, o.vlen, err) < 0)
				return vs_err_wrap(err, "socket");
			has_socket = true;
		} else {
			return vs_err(err, 0, "%.*s: unknown option (tag=, socket=)", (int)o.klen,
				      o.key);
		}
	}
	if (more < 0)
		return -1;
	if (!has_tag)
		return vs_err(err, 0, "tag: missing (use --fs tag=TAG,socket=PATH)");
	if (!has_socket)
		return vs_err(err, 0, "socket: missing (use --fs tag=TAG,socket=PATH)");
	return 0;
}

int fs_spec_from_json(json_t *obj, struct fs_spec *out, vs_err_t *err)
{
	static const char *const keys[] = {"tag", "socket", NULL};
	*out = (struct fs_spec){0};
	const char *tag = NULL, *sock = NULL;
	if (vm_json_only(obj, keys, err) < 0 ||
	    vjson_require(vjson_string(obj, NULL, "tag", &tag, err), NULL, "tag", "a string", err) <
		0 ||
	    vjson_require(vjson_string(obj, NULL, "socket", &sock, err), NULL, "socket", "a string",
			  err) < 0)
		return -1;
	if (set_tag(out, tag, strlen(tag), err) < 0)
		return vs_err_wrap(err, "tag");
	if (set_socket(out, sock, strlen(sock), err) < 0)
		return vs_err_wrap(err, "socket");
	return 0;
}
