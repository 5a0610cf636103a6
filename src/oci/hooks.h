/* OCI hooks: each runs with the container's state JSON on stdin, its timeout
 * enforced. */
#ifndef VESSEL_OCI_HOOKS_H
#define VESSEL_OCI_HOOKS_H

#include <jansson.h>
#include "base/error.h"
#include "oci/spec.h"

/* Runs hooks[kind] in order. Before the user's program runs the first failure stops
 * them and is returned; poststart and poststop failures are warnings and the rest run. */
int hooks_run(const struct spec_hooks *hooks, enum spec_hook_kind kind, json_t *state,
	      vs_err_t *err);
/* The same for hooks stored in state.json (poststart/poststop run in later commands). */
int hooks_run_json(json_t *hooks_json, enum spec_hook_kind kind, json_t *state, vs_err_t *err);

#endif
