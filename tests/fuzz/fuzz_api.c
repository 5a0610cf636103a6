/* The API's request path from raw bytes: HTTP parsing (http-parser and our limits), routing,
 * body parsing and every resource's handler, on a fresh instance whose controller is a fake
 * (start, pause and resume succeed, so the started states are reached too). Checks, besides
 * crashes, UB and leaks: every byte of output is whole responses, each a 100, 200, 204 or
 * 400, and a 400 carries a fault_message. A PATCH of a started VM's drive or interface goes
 * through the device's own body parser (what the real device does before it changes).
 * Inputs naming /logger or /metrics are skipped: those open (and create) files at any path
 * the input names, which a fuzzer must not do on the machine it runs on. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vmm/api/api.h"
#include "vmm/virtio/blk_spec.h"
#include "vmm/virtio/net_spec.h"

/* Snapshots: the body was checked whole before the controller is asked; its fields hold. */
static int snap_create(void *ctx, const struct api_snapshot_create *o, const char *config,
		       vs_err_t *err)
{
	(void)ctx;
	if (!o->state_path || !o->mem_path || !config)
		__builtin_trap();
	return vs_err(err, 0, "no");
}

static int snap_load(void *ctx, const struct api_snapshot_load *o, json_t **doc, vs_err_t *err)
{
	(void)ctx;
	(void)doc;
	if (!o->state_path || !o->mem_path)
		__builtin_trap();
	for (size_t i = 0; i < o->nnet; i++)
		if (!o->net[i].iface_id || !o->net[i].host_dev_name)
			__builtin_trap();
	return vs_err(err, 0, "no");
}

/* A PATCH the API let through: its id was checked, the device's parser has the rest. */
static int patch_device(void *ctx, const struct device_kind *kind, unsigned index, json_t *body,
			vs_err_t *err)
{
	(void)ctx;
	(void)index;
	if (!json_is_object(body))
		__builtin_trap();
	if (!strcmp(kind->name, "drive")) {
		struct blk_patch p;
		if (blk_patch_from_json(body, &p, err) < 0)
			return -1;
		if ((p.path && !*p.path) || (!p.path && !p.has_rl))
			__builtin_trap();
		return 0;
	}
	if (!strcmp(kind->name, "network-interface")) {
		struct net_patch p;
		if (net_patch_from_json(body, &p, err) < 0)
			return -1;
		if (!p.has_rx && !p.has_tx)
			__builtin_trap();
		return 0;
	}
	return vs_err(err, 0, "no");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int ok_start(void *ctx, const struct vm_config *c, vs_err_t *err)
{
	(void)ctx;
	(void)err;
	if (!c->kernel || c->cpus < 1)
		__builtin_trap();
	return 0;
}

static int ok(void *ctx, vs_err_t *err)
{
	(void)ctx;
	(void)err;
	return 0;
}

static int no(void *ctx, vs_err_t *err)
{
	(void)ctx;
	return vs_err(err, 0, "no");
}

static void check_output(const char *out, size_t len)
{
	size_t i = 0;
	while (i < len) {
		if (len - i < 13 || memcmp(out + i, "HTTP/1.1 ", 9) != 0)
			__builtin_trap();
		const char *status = out + i + 9;
		if (memcmp(status, "100", 3) && memcmp(status, "200", 3) &&
		    memcmp(status, "204", 3) && memcmp(status, "400", 3))
			__builtin_trap();
		const char *end = memmem(out + i, len - i, "\r\n\r\n", 4);
		if (!end)
			__builtin_trap();
		size_t body = 0;
		const char *cl = memmem(out + i, (size_t)(end - (out + i)), "Content-Length: ", 16);
		if (cl)
			body = strtoul(cl + 16, NULL, 10);
		size_t next = (size_t)(end + 4 - out) + body;
		if (next > len)
			__builtin_trap();
		if (!memcmp(status, "400", 3) && !memmem(end, body + 4, "\"fault_message\"", 15))
			__builtin_trap();
		i = next;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (memmem(data, size, "logger", 6) || memmem(data, size, "metrics", 7))
		return 0;
	const struct api_controller ctl = {NULL,	  ok_start,  ok,	   ok,
					   no,		  snap_create, snap_load, patch_device};
	vs_err_t err = NULL;
	struct api *a = api_new("fuzz", &ctl, &err);
	if (!a)
		return 0;
	struct api_http *h = api_http_new(a);
	if (h) {
		/* in two pieces, as a socket may give them */
		size_t half = size / 2;
		if (api_http_feed(h, (const char *)data, half))
			api_http_feed(h, (const char *)data + half, size - half);
		size_t len;
		const char *out = api_http_output(h, &len);
		check_output(out, len);
		api_http_free(h);
	}
	api_free(a);
	return 0;
}
