/* A container's record in the state directory (<root>/<id>/state.json) and the
 * status derived from it. Processes are identified by pid and start time, so a
 * recycled pid is never mistaken for the container. The record exists before anything
 * of the container does (phase `creating`, naming the runtime that makes it) and is
 * rewritten atomically as resources appear, so a crash at any point leaves enough for
 * delete to remove everything (docs/runtime-state.md). */
#ifndef VESSEL_OCI_STATE_H
#define VESSEL_OCI_STATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

#include "base/error.h"
#include "base/globals.h"

enum container_status { STATUS_CREATING, STATUS_CREATED, STATUS_RUNNING, STATUS_PAUSED, STATUS_STOPPED };

/* How far create got: `creating` until the init is ready and the record complete. */
enum state_phase { PHASE_CREATING, PHASE_CREATED };

struct container_state {
	char *id;
	char *dir; /* <root>/<id> */
	int dir_fd;
	enum state_phase phase;
	pid_t runtime_pid; /* the vessel process creating it (phase creating) */
	uint64_t runtime_start_time;
	pid_t pid;	     /* the init, 0 until cloned */
	uint64_t start_time; /* /proc/<pid>/stat field 22, clock ticks since boot */
	char *bundle;
	char *rootfs;
	char *created; /* RFC 3339 */
	uid_t owner;
	json_t *annotations; /* may be NULL */
	json_t *hooks;	     /* poststart/poststop need them later; may be NULL */
	json_t *cgroup;	     /* cgroup_to_json(); may be NULL */
	bool paused;	     /* frozen by `vessel pause` */
	bool garbled;	     /* state_load failed on the record, not on the directory */
};

/* A container id: what runc accepts, so paths built from it stay inside --root. */
int state_check_id(const char *id, vs_err_t *err);

/* Fails with "container `ID` already exists" when it does: a quick check before work
 * that would otherwise report a symptom (its busy cgroup); state_create decides. */
int state_check_free(const struct vs_globals *g, const char *id, vs_err_t *err);
/* Makes <root>/<id> appear, locked, with st's record (phase creating, filled by the
 * caller) already in it. The id is taken atomically; no reader
 * ever sees the directory without its record. */
int state_create(const struct vs_globals *g, const char *id, struct container_state *st,
		 vs_err_t *err);
/* Opens (and with lock, locks) an existing container; "container `ID` does not exist"
 * otherwise. When the directory exists but its record is missing or unreadable, fails
 * with st->garbled set and the directory still open (and locked): delete can remove it. */
int state_load(const struct vs_globals *g, const char *id, bool lock, struct container_state *st,
	       vs_err_t *err);
/* The record's fields into st (whose id is set), every one checked for type and range:
 * the file is ours, but a crash, a full disk or a hand edit may have left anything. */
int state_parse(json_t *j, struct container_state *st, vs_err_t *err);
/* Removes the temporary directories of creates killed before they named theirs (only
 * those whose runtime is dead). */
void state_sweep_unnamed(const struct vs_globals *g);
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

#endif
