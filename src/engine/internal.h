/* What the engine's files share; not a public header. */
#ifndef VESSEL_ENGINE_INTERNAL_H
#define VESSEL_ENGINE_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>

#include "base/error.h"
#include "base/globals.h"

/* STORE/containers/ID, or with name a file inside it. */
char *engine_dir(const char *store, const char *id, const char *name);
/* The record of the container whose id, id prefix or name is ref (caller decrefs). */
json_t *engine_find(const char *store, const char *ref, vs_err_t *err);
/* Every record, as an array. */
json_t *engine_records(const char *store, vs_err_t *err);
int engine_write_record(const char *store, json_t *rec, vs_err_t *err);

/* The runtime, vessel itself as a child: argv after `vessel --root ROOT`. out_fd >= 0
 * takes the child's stdout and stderr. Returns the child's exit status. */
int engine_runtime(const struct vs_globals *g, char **argv, int out_fd, vs_err_t *err);
/* The runtime's status of id: "running", "created", "stopped", or NULL when it has
 * none (never created, or deleted). */
char *engine_runtime_status(const struct vs_globals *g, const char *id);

int engine_run(const struct vs_globals *g, const char *store, int argc, char **argv,
	       vs_err_t *err);
/* Unmounts and removes a container's root and record, deleting it from the runtime. */
int engine_remove(const struct vs_globals *g, const char *store, json_t *rec, bool force,
		  vs_err_t *err);

#endif
