#include "oci/placement.h"

#include <errno.h>
#include <linux/ioprio.h>
#include <linux/mempolicy.h>
#include <linux/sched.h>
#include <linux/sched/types.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/json.h"
#include "base/util.h"

#ifndef SCHED_DEADLINE
#define SCHED_DEADLINE 6
#endif
#ifndef MPOL_WEIGHTED_INTERLEAVE
#define MPOL_WEIGHTED_INTERLEAVE 6
#endif

struct name_value {
	const char *name;
	unsigned long value;
};

static const struct name_value sched_policies[] = {
    {"SCHED_OTHER", SCHED_NORMAL},	{"SCHED_FIFO", SCHED_FIFO}, {"SCHED_RR", SCHED_RR},
    {"SCHED_BATCH", SCHED_BATCH},	{"SCHED_ISO", 4},	    {"SCHED_IDLE", SCHED_IDLE},
    {"SCHED_DEADLINE", SCHED_DEADLINE},
};

static const struct name_value sched_flags[] = {
    {"SCHED_FLAG_RESET_ON_FORK", SCHED_FLAG_RESET_ON_FORK},
    {"SCHED_FLAG_RECLAIM", SCHED_FLAG_RECLAIM},
    {"SCHED_FLAG_DL_OVERRUN", SCHED_FLAG_DL_OVERRUN},
    {"SCHED_FLAG_KEEP_POLICY", SCHED_FLAG_KEEP_POLICY},
    {"SCHED_FLAG_KEEP_PARAMS", SCHED_FLAG_KEEP_PARAMS},
    {"SCHED_FLAG_UTIL_CLAMP_MIN", SCHED_FLAG_UTIL_CLAMP_MIN},
    {"SCHED_FLAG_UTIL_CLAMP_MAX", SCHED_FLAG_UTIL_CLAMP_MAX},
};

static const struct name_value ioprio_classes[] = {
    {"IOPRIO_CLASS_RT", IOPRIO_CLASS_RT},
    {"IOPRIO_CLASS_BE", IOPRIO_CLASS_BE},
    {"IOPRIO_CLASS_IDLE", IOPRIO_CLASS_IDLE},
};

static const struct name_value mempolicy_modes[] = {
    {"MPOL_DEFAULT", MPOL_DEFAULT},	  {"MPOL_BIND", MPOL_BIND},
    {"MPOL_INTERLEAVE", MPOL_INTERLEAVE}, {"MPOL_WEIGHTED_INTERLEAVE", MPOL_WEIGHTED_INTERLEAVE},
    {"MPOL_PREFERRED", MPOL_PREFERRED},	  {"MPOL_PREFERRED_MANY", MPOL_PREFERRED_MANY},
    {"MPOL_LOCAL", MPOL_LOCAL},
};

static const struct name_value mempolicy_flags[] = {
    {"MPOL_F_NUMA_BALANCING", MPOL_F_NUMA_BALANCING},
    {"MPOL_F_RELATIVE_NODES", MPOL_F_RELATIVE_NODES},
    {"MPOL_F_STATIC_NODES", MPOL_F_STATIC_NODES},
};

static int lookup(const struct name_value *t, size_t n, const char *name, const char *path,
		  unsigned long *out, vs_err_t *err)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(t[i].name, name) == 0) {
			*out = t[i].value;
			return 0;
		}
	return vs_err(err, 0, "%s: unknown value `%.64s`", path, name);
}

static json_t *names_json(const struct name_value *t, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(t[i].name));
	return a;
}

json_t *placement_sched_policies_json(void)
{
	return names_json(sched_policies, ARRAY_SIZE(sched_policies));
}

json_t *placement_sched_flags_json(void)
{
	return names_json(sched_flags, ARRAY_SIZE(sched_flags));
}

json_t *placement_ioprio_classes_json(void)
{
	return names_json(ioprio_classes, ARRAY_SIZE(ioprio_classes));
}

json_t *placement_mempolicy_modes_json(void)
{
	return names_json(mempolicy_modes, ARRAY_SIZE(mempolicy_modes));
}

json_t *placement_mempolicy_flags_json(void)
{
	return names_json(mempolicy_flags, ARRAY_SIZE(mempolicy_flags));
}

/* an array of flag names, OR-ed */
static int parse_flags(json_t *o, const char *path, const char *key, const struct name_value *t,
		       size_t n, unsigned long *out, vs_err_t *err)
{
	json_t *a = NULL;
	*out = 0;
	if (vjson_array(o, path, key, &a, err) < 0)
		return -1;
	for (size_t i = 0; a && i < json_array_size(a); i++) {
		cleanup_free char *kp = vjson_join(path, key);
		cleanup_free char *ip = vjson_index(kp, i);
		json_t *v = json_array_get(a, i);
		unsigned long f = 0;
		if (!json_is_string(v))
			return vs_err(err, 0, "%s: must be a string", ip);
		if (lookup(t, n, json_string_value(v), ip, &f, err) < 0)
			return -1;
		*out |= f;
	}
	return 0;
}

int placement_parse_sched(json_t *o, const char *path, struct placement_sched *out, vs_err_t *err)
{
	memset(out, 0, sizeof(*out));
	if (!o)
		return 0;
	const char *policy = NULL;
	int64_t nice = 0, prio = 0;
	unsigned long pol = 0, flags = 0;
	cleanup_free char *pp = vjson_join(path, "policy");
	if (vjson_require(vjson_string(o, path, "policy", &policy, err), path, "policy",
			  "e.g. SCHED_OTHER", err) < 0 ||
	    lookup(sched_policies, ARRAY_SIZE(sched_policies), policy, pp, &pol, err) < 0 ||
	    vjson_int_range(o, path, "nice", -20, 19, &nice, err) < 0 ||
	    vjson_int_range(o, path, "priority", 0, 99, &prio, err) < 0 ||
	    parse_flags(o, path, "flags", sched_flags, ARRAY_SIZE(sched_flags), &flags, err) < 0 ||
	    vjson_uint64(o, path, "runtime", &out->runtime, err) < 0 ||
	    vjson_uint64(o, path, "deadline", &out->deadline, err) < 0 ||
	    vjson_uint64(o, path, "period", &out->period, err) < 0)
		return -1;
	bool realtime = pol == SCHED_FIFO || pol == SCHED_RR;
	if (prio && !realtime)
		return vs_err(err, 0, "%s.priority: only SCHED_FIFO and SCHED_RR take a priority",
			      path);
	if (realtime && !prio)
		return vs_err(err, 0, "%s.priority: %s needs a priority from 1 to 99", path,
			      policy);
	if (pol == SCHED_DEADLINE && (!out->runtime || !out->deadline))
		return vs_err(err, 0, "%s: SCHED_DEADLINE needs runtime and deadline", path);
	out->set = true;
	out->policy = (uint32_t)pol;
	out->nice = (int32_t)nice;
	out->priority = (uint32_t)prio;
	out->flags = flags;
	return 0;
}

int placement_parse_ioprio(json_t *o, const char *path, struct placement_ioprio *out, vs_err_t *err)
{
	memset(out, 0, sizeof(*out));
	if (!o)
		return 0;
	const char *cls = NULL;
	int64_t prio = 0;
	unsigned long c = 0;
	cleanup_free char *cp = vjson_join(path, "class");
	if (vjson_require(vjson_string(o, path, "class", &cls, err), path, "class",
			  "e.g. IOPRIO_CLASS_BE", err) < 0 ||
	    lookup(ioprio_classes, ARRAY_SIZE(ioprio_classes), cls, cp, &c, err) < 0 ||
	    vjson_int_range(o, path, "priority", 0, 7, &prio, err) < 0)
		return -1;
	out->set = true;
	out->class_ = (int)c;
	out->priority = (int)prio;
	return 0;
}

/* "0-3,7" */
static int parse_nodes(const char *s, const char *path, struct placement_mempolicy *m,
		       vs_err_t *err)
{
	const size_t bits = 8 * sizeof(m->nodes[0]);
	while (*s) {
		char *end;
		errno = 0;
		unsigned long a = strtoul(s, &end, 10), b = a;
		if (end == s || errno)
			return vs_err(err, 0, "%s: bad node list", path);
		if (*end == '-') {
			s = end + 1;
			b = strtoul(s, &end, 10);
			if (end == s || errno || b < a)
				return vs_err(err, 0, "%s: bad node range", path);
		}
		if (b >= PLACEMENT_MAX_NODES)
			return vs_err(err, 0, "%s: node %lu is beyond %d", path, b,
				      PLACEMENT_MAX_NODES - 1);
		for (unsigned long n = a; n <= b; n++)
			m->nodes[n / bits] |= 1UL << (n % bits);
		if (b + 1 > m->max_node)
			m->max_node = b + 1;
		if (*end == ',')
			end++;
		else if (*end)
			return vs_err(err, 0, "%s: bad node list", path);
		s = end;
	}
	return 0;
}

int placement_parse_mempolicy(json_t *o, const char *path, struct placement_mempolicy *out,
			      vs_err_t *err)
{
	memset(out, 0, sizeof(*out));
	if (!o)
		return 0;
	const char *mode = NULL, *nodes = NULL;
	unsigned long md = 0, flags = 0;
	cleanup_free char *mp = vjson_join(path, "mode");
	cleanup_free char *np = vjson_join(path, "nodes");
	if (vjson_require(vjson_string(o, path, "mode", &mode, err), path, "mode", "e.g. MPOL_BIND",
			  err) < 0 ||
	    lookup(mempolicy_modes, ARRAY_SIZE(mempolicy_modes), mode, mp, &md, err) < 0 ||
	    vjson_string(o, path, "nodes", &nodes, err) < 0 ||
	    parse_flags(o, path, "flags", mempolicy_flags, ARRAY_SIZE(mempolicy_flags), &flags,
			err) < 0 ||
	    (nodes && parse_nodes(nodes, np, out, err) < 0))
		return -1;
	bool wants_nodes = md != MPOL_DEFAULT && md != MPOL_LOCAL;
	if (wants_nodes && !out->max_node)
		return vs_err(err, 0, "%s: %s needs nodes", np, mode);
	if (!wants_nodes && out->max_node)
		return vs_err(err, 0, "%s: %s takes no nodes", np, mode);
	out->set = true;
	out->mode = (int)md;
	out->flags = (unsigned)flags;
	return 0;
}

int placement_apply_sched(const struct placement_sched *s, vs_err_t *err)
{
	if (!s->set)
		return 0;
	struct sched_attr a = {
	    .size = sizeof(a),
	    .sched_policy = s->policy,
	    .sched_flags = s->flags,
	    .sched_nice = s->nice,
	    .sched_priority = s->priority,
	    .sched_runtime = s->runtime,
	    .sched_deadline = s->deadline,
	    .sched_period = s->period,
	};
	if (syscall(SYS_sched_setattr, 0, &a, 0) < 0)
		return vs_err(err, errno, "process.scheduler: sched_setattr");
	return 0;
}

int placement_apply_ioprio(const struct placement_ioprio *p, vs_err_t *err)
{
	if (!p->set)
		return 0;
	if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0,
		    IOPRIO_PRIO_VALUE(p->class_, p->priority)) < 0)
		return vs_err(err, errno, "process.ioPriority: ioprio_set");
	return 0;
}

int placement_apply_mempolicy(const struct placement_mempolicy *m, vs_err_t *err)
{
	if (!m->set)
		return 0;
	/* maxnode counts one past the last bit the kernel reads */
	if (syscall(SYS_set_mempolicy, m->mode | (int)m->flags, m->max_node ? m->nodes : NULL,
		    m->max_node ? m->max_node + 1 : 0) < 0)
		return vs_err(err, errno, "linux.memoryPolicy: set_mempolicy");
	return 0;
}
