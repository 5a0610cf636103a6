/* Where a container's processes run: process.scheduler (sched_setattr),
 * process.ioPriority (ioprio_set) and linux.memoryPolicy (set_mempolicy), parsed here
 * from config.json and applied in the child. The name tables are the ones `features`
 * lists, so it says exactly what the parser takes. */
#ifndef VESSEL_OCI_PLACEMENT_H
#define VESSEL_OCI_PLACEMENT_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "base/error.h"

struct placement_sched {
	bool set;
	uint32_t policy;
	int32_t nice;
	uint32_t priority;
	uint64_t flags, runtime, deadline, period;
};

struct placement_ioprio {
	bool set;
	int class_, priority;
};

#define PLACEMENT_MAX_NODES 1024
struct placement_mempolicy {
	bool set;
	int mode;
	unsigned flags;
	unsigned long nodes[PLACEMENT_MAX_NODES / (8 * sizeof(unsigned long))];
	unsigned long max_node; /* highest node + 1, for set_mempolicy's maxnode */
};

/* o may be NULL (set stays false). path names the field in errors. */
int placement_parse_sched(json_t *o, const char *path, struct placement_sched *out, vs_err_t *err);
int placement_parse_ioprio(json_t *o, const char *path, struct placement_ioprio *out,
			   vs_err_t *err);
int placement_parse_mempolicy(json_t *o, const char *path, struct placement_mempolicy *out,
			      vs_err_t *err);

/* In the child, for itself. */
int placement_apply_sched(const struct placement_sched *s, vs_err_t *err);
int placement_apply_ioprio(const struct placement_ioprio *p, vs_err_t *err);
int placement_apply_mempolicy(const struct placement_mempolicy *m, vs_err_t *err);

/* For `features`: the names each field accepts, as a new JSON array. */
json_t *placement_sched_policies_json(void);
json_t *placement_sched_flags_json(void);
json_t *placement_ioprio_classes_json(void);
json_t *placement_mempolicy_modes_json(void);
json_t *placement_mempolicy_flags_json(void);

#endif
