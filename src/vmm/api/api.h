/* Firecracker's API on a Unix socket (`vessel vm api`): the same paths, bodies, methods
 * and status codes, so Firecracker's clients, docs and curl recipes work unchanged.
 *
 * Three layers, each usable alone (the unit tests and the fuzzer drive the lower two
 * without a socket or a VM):
 *   - api_handle: one request (method, path, body) -> one response. The router's table
 *     (router.c) picks a resource's handler (one file per resource: res_*.c). The VM's
 *     description is kept as Firecracker's JSON document and every body goes through the
 *     same JSON-to-config code as --config-file (config_json.c and the device kinds).
 *   - api_http: HTTP/1.1 bytes in, responses out (Debian's http-parser; limits on the
 *     URL, headers and body).
 *   - api_server: the listening socket and its connections, non-blocking, in the
 *     controller's event loop.
 * The API never touches the VM: what acts on it (start, pause, resume, Ctrl+Alt+Del) is
 * asked of the controller through struct api_controller. */
#ifndef VESSEL_VMM_API_API_H
#define VESSEL_VMM_API_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "vmm/config.h"
#include "vmm/device.h"

struct loop;

#define API_BODY_MAX 51200 /* Firecracker's default payload limit */
#define API_URL_MAX 1024
#define API_HEADERS_MAX 8192 /* all header lines of one request together */

/* PUT /snapshot/create and /snapshot/load, checked and decoded (Firecracker's bodies). */
struct api_snapshot_create {
	const char *state_path, *mem_path;
	bool diff;
};
struct api_net_override {
	const char *iface_id, *host_dev_name;
};
struct api_snapshot_load {
	const char *state_path, *mem_path;
	bool track_dirty, resume;
	const struct api_net_override *net;
	size_t nnet;
};

/* PUT /migrate (vessel's own): where to, and when to switch (docs/migration.md). */
struct api_migrate {
	const char *url;
	unsigned downtime_ms, timeout_s;
	bool force; /* on_timeout: force the switch instead of cancelling */
	bool local; /* hand over the RAM's memfd instead of copying RAM */
};

/* A running VM's balloon: a new target, a new statistics interval, or its statistics. */
enum { API_BALLOON_TARGET, API_BALLOON_STATS_INTERVAL, API_BALLOON_STATS };
struct api_balloon_op {
	int what;
	uint32_t value; /* MiB, or seconds */
};

/* What the API asks of the controller. Each returns 0, or -1 with err (the reason goes
 * to the client as a 400's fault_message). */
struct api_controller {
	void *ctx;
	/* build the VM from c and run it (InstanceStart) */
	int (*start)(void *ctx, const struct vm_config *c, vs_err_t *err);
	int (*pause)(void *ctx, vs_err_t *err);
	int (*resume)(void *ctx, vs_err_t *err);
	int (*ctrl_alt_del)(void *ctx, vs_err_t *err);
	/* the VM is paused; config_json is its description, kept in the state file */
	int (*snapshot_create)(void *ctx, const struct api_snapshot_create *o,
			       const char *config_json, vs_err_t *err);
	/* no VM yet: build one from the snapshot and run it (paused unless o->resume); *doc
	 * gets the snapshot's description, with the overrides, for the API to keep */
	int (*snapshot_load)(void *ctx, const struct api_snapshot_load *o, json_t **doc,
			     vs_err_t *err);
	/* PATCH of a device of the started VM: the index-th device of kind (its place among
	 * the description's devices of that kind) takes the body (its id checked already) */
	int (*device_update)(void *ctx, const struct device_kind *kind, unsigned index,
			     json_t *body, vs_err_t *err);
	/* the VM runs: start migrating it (a worker does; this returns at once) */
	int (*migrate)(void *ctx, const struct api_migrate *o, const char *config_json,
		       vs_err_t *err);
	/* the last migration's status (new reference), NULL if none was started */
	json_t *(*migrate_status)(void *ctx);
	/* API_BALLOON_STATS sets *stats (Firecracker's BalloonStats) */
	int (*balloon)(void *ctx, const struct api_balloon_op *op, json_t **stats, vs_err_t *err);
};

enum api_state { API_NOT_STARTED, API_RUNNING, API_PAUSED };

struct api;

/* id: the instance id GET / reports (NULL: "anonymous-instance", as Firecracker). */
struct api *api_new(const char *id, const struct api_controller *ctl, vs_err_t *err);
void api_free(struct api *a);
enum api_state api_state(const struct api *a);

/* The instance runs a VM the controller got elsewhere (a migration's), described by doc
 * (taken). */
void api_adopt_running(struct api *a, json_t *doc);

/* A Firecracker config file (--config-file) as the description, then InstanceStart. */
int api_boot_config_file(struct api *a, const char *path, vs_err_t *err);

struct api_response {
	int status; /* 200, 204 or 400 */
	char *body; /* JSON (malloc'd) or NULL for 204 */
};

/* One request -> its response (r->body to free). body may be NULL (len 0). */
void api_handle(struct api *a, const char *method, const char *path, const char *body, size_t len,
		struct api_response *r);

/* HTTP/1.1 over one connection: bytes in, whole responses out. */
struct api_http;
struct api_http *api_http_new(struct api *a);
void api_http_free(struct api_http *h);
/* Parses data; each complete request is handled and its response appended to the output.
 * Returns false when the connection is to close once the output is sent (a malformed or
 * oversized request, which gets its 400 first, or Connection: close). */
bool api_http_feed(struct api_http *h, const char *data, size_t len);
/* The output not yet sent, and how much of it was. */
const char *api_http_output(const struct api_http *h, size_t *len);
void api_http_sent(struct api_http *h, size_t n);

/* The socket at path (refused if something is there already, as Firecracker), its
 * connections in loop. api_server_close unlinks it. */
struct api_server;
struct api_server *api_server_open(struct loop *loop, const char *path, struct api *a,
				   vs_err_t *err);
void api_server_close(struct api_server *s);

#endif
