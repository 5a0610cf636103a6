/* The OCI request of the agent protocol: runc's commands that read or change a running
 * container's cgroup (ps, pause, resume, events --stats, update), asked of the guest's own
 * runtime, since the container's processes and cgroup exist only in the guest. */
#ifndef VESSEL_VMC_OPS_MSG_H
#define VESSEL_VMC_OPS_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/error.h"

enum vmc_oci_cmd {
	VMC_OCI_PS,	/* ps --format table|json [PS_ARGS...] */
	VMC_OCI_PAUSE,	/* pause */
	VMC_OCI_RESUME, /* resume */
	VMC_OCI_STATS,	/* events --stats: one stats event */
	VMC_OCI_UPDATE, /* update --resources FILE */
};

/* {"command": "ps", "format": "table"|"json", "args": [PS_ARG, ...]},
 * {"command": "pause"|"resume"|"stats"}, {"command": "update", "resources": {...}} */
struct vmc_oci_msg {
	enum vmc_oci_cmd cmd;
	bool json;	      /* ps --format json */
	char **ps_args;	      /* ps: NULL-terminated, maybe empty; NULL otherwise */
	char *resources;      /* update: the resources' JSON text */
	int64_t memory_limit; /* update: resources.memory.limit, 0 when not set */
};

#define VMC_OCI_MAX_PS_ARGS 64

/* The payload (malloc'd, *len set). ps_args and resources only for the commands taking them. */
char *vmc_oci_msg_build(enum vmc_oci_cmd cmd, bool json, char *const *ps_args, json_t *resources,
			size_t *len, vs_err_t *err);
/* Checks everything: a known command, only its own keys, strings for ps's arguments (at
 * most VMC_OCI_MAX_PS_ARGS), an object for update's resources (its memory.limit, when
 * present, an integer). */
int vmc_oci_msg_parse(const uint8_t *payload, size_t len, struct vmc_oci_msg *m, vs_err_t *err);
/* The guest runtime's command line for it (NULL-terminated, *argc set): the strings are
 * m's, id's and resources_file's; free the array only. */
char **vmc_oci_argv(const struct vmc_oci_msg *m, const char *id, const char *resources_file,
		    int *argc, vs_err_t *err);
/* update: a memory limit above the microVM's RAM (ram bytes) can't be had, since guest
 * RAM is fixed at boot; a clear error then. */
int vmc_oci_check_memory(const struct vmc_oci_msg *m, uint64_t ram, vs_err_t *err);
void vmc_oci_msg_release(struct vmc_oci_msg *m);

#endif
