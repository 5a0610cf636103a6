/* Inside the API component: the instance's state, the request a handler gets, and the
 * handlers of the resources (one file each), which the router's table names. */
#ifndef VESSEL_VMM_API_RESOURCES_H
#define VESSEL_VMM_API_RESOURCES_H

#include <stdint.h>

#include "vmm/api/api.h"
#include "vmm/device.h"

struct api {
	char *id;
	struct api_controller ctl;
	enum api_state state;
	/* The VM's description as Firecracker's FullVmConfiguration: boot-source,
	 * machine-config, drives, network-interfaces, entropy, as last PUT. A call's change is
	 * made on a copy, checked whole by vm_config_from_json_partial, then kept. */
	json_t *doc;
	json_t *logger, *metrics; /* as PUT (NULL: not configured) */
	int metrics_fd;
	uint64_t requests, faults; /* for FlushMetrics */
};

struct api_request {
	const char *method, *path;
	json_t *body; /* the parsed body (a JSON object) when the route takes one */
	char id[65];  /* the {..._id} of the path */
	const struct device_kind *kind; /* device routes */
};

/* A handler fills r (status 200 with a body, or 204) and returns 0, or returns -1 with err,
 * which becomes the 400's fault_message. */
typedef int (*api_handler)(struct api *a, const struct api_request *q, struct api_response *r,
			   vs_err_t *err);

struct api_route {
	const char *method;
	const char *pattern; /* "/drives/{drive_id}": a {name} segment is the id */
	api_handler fn;
	bool body;			/* takes a JSON object body */
	const struct device_kind *kind; /* device routes: the kind the path is */
};

/* The route of method and path: 0 with *route and q->id, or -1 with err (no such path, or
 * not with that method). */
int api_route(const char *method, const char *path, const struct api_route **route,
	      struct api_request *q, vs_err_t *err);

/* Helpers the resources share (api.c). */
int api_ok_json(struct api_response *r, json_t *v, vs_err_t *err); /* 200; takes v */
void api_ok_empty(struct api_response *r);			   /* 204 */
/* Fails unless the microVM is not started yet / is started. what: "PUT /boot-source". */
int api_before_start(const struct api *a, const char *what, vs_err_t *err);
int api_after_start(const struct api *a, const char *what, vs_err_t *err);
/* Whether doc is a description the config code takes (boot-source may be absent). */
int api_check(json_t *doc, vs_err_t *err);
/* Replaces doc with the copy `next` if the whole description still holds (next is taken). */
int api_commit(struct api *a, json_t *next, vs_err_t *err);
/* doc's machine-config with Firecracker's defaults for what is absent (new reference). */
json_t *api_machine_config(const struct api *a);

/* The resources (res_*.c). */
int res_instance_get(struct api *a, const struct api_request *q, struct api_response *r,
		     vs_err_t *err);
int res_version_get(struct api *a, const struct api_request *q, struct api_response *r,
		    vs_err_t *err);
int res_vm_config_get(struct api *a, const struct api_request *q, struct api_response *r,
		      vs_err_t *err);
int res_boot_source_put(struct api *a, const struct api_request *q, struct api_response *r,
			vs_err_t *err);
int res_machine_config_get(struct api *a, const struct api_request *q, struct api_response *r,
			   vs_err_t *err);
int res_machine_config_put(struct api *a, const struct api_request *q, struct api_response *r,
			   vs_err_t *err);
int res_machine_config_patch(struct api *a, const struct api_request *q, struct api_response *r,
			     vs_err_t *err);
int res_device_put(struct api *a, const struct api_request *q, struct api_response *r,
		   vs_err_t *err);
int res_device_patch(struct api *a, const struct api_request *q, struct api_response *r,
		     vs_err_t *err);
int res_actions_put(struct api *a, const struct api_request *q, struct api_response *r,
		    vs_err_t *err);
int res_vm_patch(struct api *a, const struct api_request *q, struct api_response *r, vs_err_t *err);
int res_logger_put(struct api *a, const struct api_request *q, struct api_response *r,
		   vs_err_t *err);
int res_metrics_put(struct api *a, const struct api_request *q, struct api_response *r,
		    vs_err_t *err);
int res_metrics_flush(struct api *a, vs_err_t *err);
int res_balloon_put(struct api *a, const struct api_request *q, struct api_response *r,
		    vs_err_t *err);
int res_balloon_get(struct api *a, const struct api_request *q, struct api_response *r,
		    vs_err_t *err);
int res_balloon_patch(struct api *a, const struct api_request *q, struct api_response *r,
		      vs_err_t *err);
int res_balloon_stats_get(struct api *a, const struct api_request *q, struct api_response *r,
			  vs_err_t *err);
int res_balloon_stats_patch(struct api *a, const struct api_request *q, struct api_response *r,
			    vs_err_t *err);
int res_snapshot_create(struct api *a, const struct api_request *q, struct api_response *r,
			vs_err_t *err);
int res_snapshot_load(struct api *a, const struct api_request *q, struct api_response *r,
		      vs_err_t *err);
int res_migrate_put(struct api *a, const struct api_request *q, struct api_response *r,
		    vs_err_t *err);
int res_migrate_get(struct api *a, const struct api_request *q, struct api_response *r,
		    vs_err_t *err);

#endif
