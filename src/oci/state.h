/* A container's record in the state directory (<root>/<id>/state.json) and the
 * status derived from it. The process is identified by pid and start time, so a
 * recycled pid is never mistaken for the container. */
#ifndef VESSEL_OCI_STATE_H
#define VESSEL_OCI_STATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

#include "base/error.h"
#include "base/globals.h"

enum container_status { STATUS_CREATING, STATUS_CREATED, STATUS_RUNNING, STATUS_PAUSED, STATUS_STOPPED };

struct container_state {
	char *id;
	char *dir; /* <root>/<id> */
	int dir_fd;
	pid_t pid;
	uint64_t start_time; /* /proc/<pid>/stat field 22, clock ticks since boot */
	char *bundle;
	char *rootfs;
	char *created; /* RFC 3339 */
	uid_t owner;
	json_t *annotations; /* may be NULL */
	json_t *hooks;	     /* poststart/poststop need them later; may be NULL */
	json_t *cgroup;	     /* cgroup_to_json(); may be NULL */
	bool paused;	     /* frozen by `vessel pause` */
};

/* A container id: what runc accepts, so paths built from it stay inside --root. */
int state_check_id(const char *id, vs_err_t *err);

/* Creates <root>/<id> exclusively (the id is taken atomically) and locks it. */
int state_create_dir(const struct vs_globals *g, const char *id, struct container_state *st,
		     vs_err_t *err);
/* Opens (and with lock, locks) an existing container; "container `ID` does not exist" otherwise. */
int state_load(const struct vs_globals *g, const char *id, bool lock, struct container_state *st,
	       vs_err_t *err);
/* A long-lived holder (`run` waiting on its container) must not block kill/state. */
int state_unlock(struct container_state *st);
int state_lock(struct container_state *st, vs_err_t *err);
int state_save(struct container_state *st, vs_err_t *err);
/* Removes the directory (state.json, exec fifo) and releases the lock. */
int state_remove(struct container_state *st, vs_err_t *err);
void state_release(struct container_state *st);

enum container_status state_status(const struct container_state *st);
const char *state_status_name(enum container_status s);

/* The OCI state document (ociVersion, id, status, pid, bundle, annotations). */
json_t *state_to_oci_json(const struct container_state *st, enum container_status status);

/* Path of the exec fifo in the container's directory. */
#define STATE_EXEC_FIFO "exec.fifo"

/* Start time of a process (field 22 of /proc/<pid>/stat), 0 if it is gone. */
uint64_t state_proc_start_time(pid_t pid);
bool state_proc_alive(pid_t pid, uint64_t start_time);

#endif
