/* process object of config.json (also the whole of `exec --process FILE`). */
#include "oci/spec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "base/json.h"
#include "base/util.h"

static const struct {
	const char *name;
	int resource;
} rlimit_names[] = {
	{"RLIMIT_AS", RLIMIT_AS},
	{"RLIMIT_CORE", RLIMIT_CORE},
	{"RLIMIT_CPU", RLIMIT_CPU},
	{"RLIMIT_DATA", RLIMIT_DATA},
	{"RLIMIT_FSIZE", RLIMIT_FSIZE},
	{"RLIMIT_LOCKS", RLIMIT_LOCKS},
	{"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
	{"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
	{"RLIMIT_NICE", RLIMIT_NICE},
	{"RLIMIT_NOFILE", RLIMIT_NOFILE},
	{"RLIMIT_NPROC", RLIMIT_NPROC},
	{"RLIMIT_RSS", RLIMIT_RSS},
	{"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
	{"RLIMIT_RTTIME", RLIMIT_RTTIME},
	{"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
	{"RLIMIT_STACK", RLIMIT_STACK},
};

static int parse_rlimits(json_t *arr, const char *path, struct spec_process *p, vs_err_t *err)
{
	size_t n = json_array_size(arr);
	p->rlimits = calloc(n ? n : 1, sizeof(*p->rlimits));
	if (!p->rlimits)
		return vs_err(err, ENOMEM, "%s", path);
	for (size_t i = 0; i < n; i++) {
		cleanup_free char *ip = vjson_index(path, i);
		json_t *o = json_array_get(arr, i);
		if (!json_is_object(o))
			return vs_err(err, 0, "%s: must be an object", ip);
		const char *type = NULL;
		struct spec_rlimit *r = &p->rlimits[i];
		if (vjson_require(vjson_string(o, ip, "type", &type, err), ip, "type",
				  "e.g. RLIMIT_NOFILE", err) < 0 ||
		    vjson_require(vjson_uint64(o, ip, "soft", &r->soft, err), ip, "soft",
				  "the soft limit", err) < 0 ||
		    vjson_require(vjson_uint64(o, ip, "hard", &r->hard, err), ip, "hard",
				  "the hard limit", err) < 0)
			return -1;
		size_t k;
		for (k = 0; k < ARRAY_SIZE(rlimit_names); k++)
			if (strcmp(rlimit_names[k].name, type) == 0)
				break;
		if (k == ARRAY_SIZE(rlimit_names))
			return vs_err(err, 0, "%s.type: unknown rlimit `%s`", ip, type);
		for (size_t j = 0; j < i; j++)
			if (p->rlimits[j].resource == rlimit_names[k].resource)
				return vs_err(err, 0, "%s.type: `%s` is given twice", ip, type);
		if (r->soft > r->hard)
			return vs_err(err, 0, "%s: soft limit %llu is above the hard limit %llu",
				      ip, (unsigned long long)r->soft, (unsigned long long)r->hard);
		r->resource = rlimit_names[k].resource;
		p->n_rlimits++;
	}
	return 0;
}

static int parse_user(json_t *process, const char *path, struct spec_user *u, vs_err_t *err)
{
	cleanup_free char *up = vjson_join(path, "user");
	json_t *user = NULL;
	if (vjson_require(vjson_object(process, path, "user", &user, err), path, "user",
			  "an object with uid and gid", err) < 0)
		return -1;
	uint32_t uid = 0, gid = 0, umask_v = 0;
	if (vjson_require(vjson_uint32(user, up, "uid", &uid, err), up, "uid", "a user id",
			  err) < 0 ||
	    vjson_require(vjson_uint32(user, up, "gid", &gid, err), up, "gid", "a group id",
			  err) < 0)
		return -1;
	/* (uid_t)-1 means "no change" to setuid(2): never let it through */
	if (uid == UINT32_MAX || gid == UINT32_MAX)
		return vs_err(err, 0, "%s: uid and gid must be below 4294967295", up);
	u->uid = uid;
	u->gid = gid;
	int rc = vjson_uint32(user, up, "umask", &umask_v, err);
	if (rc < 0)
		return -1;
	if (rc > 0) {
		if (umask_v > 0777)
			return vs_err(err, 0, "%s.umask: must be from 0 to 0777 (511)", up);
		u->has_umask = true;
		u->umask = umask_v;
	}
	json_t *gids = NULL;
	if (vjson_array(user, up, "additionalGids", &gids, err) < 0)
		return -1;
	size_t n = json_array_size(gids);
	if (n > 65536)
		return vs_err(err, 0, "%s.additionalGids: more than 65536 groups", up);
	if (n) {
		u->additional_gids = calloc(n, sizeof(gid_t));
		if (!u->additional_gids)
			return vs_err(err, ENOMEM, "%s", up);
	}
	for (size_t i = 0; i < n; i++) {
		json_t *g = json_array_get(gids, i);
		if (!json_is_integer(g) || json_integer_value(g) < 0 ||
		    json_integer_value(g) >= UINT32_MAX)
			return vs_err(err, 0, "%s.additionalGids[%zu]: must be a group id", up, i);
		u->additional_gids[i] = (gid_t)json_integer_value(g);
	}
	u->n_additional_gids = n;
	return 0;
}

static int check_env(char **env, const char *path, vs_err_t *err)
{
	for (size_t i = 0; env && env[i]; i++)
		if (!strchr(env[i], '=') || env[i][0] == '=')
			return vs_err(err, 0, "%s.env[%zu]: must be KEY=VALUE, not `%s`", path, i,
				      env[i]);
	return 0;
}

/* scheduler and ioPriority (placement.c) */
static int parse_placement(json_t *process, const char *path, struct spec_process *p,
			   vs_err_t *err)
{
	json_t *sched = NULL, *ioprio = NULL;
	cleanup_free char *sp = vjson_join(path, "scheduler");
	cleanup_free char *ip = vjson_join(path, "ioPriority");
	if (vjson_object(process, path, "scheduler", &sched, err) < 0 ||
	    placement_parse_sched(sched, sp, &p->sched, err) < 0 ||
	    vjson_object(process, path, "ioPriority", &ioprio, err) < 0 ||
	    placement_parse_ioprio(ioprio, ip, &p->ioprio, err) < 0)
		return -1;
	return 0;
}

int spec_parse_process(json_t *process, const char *path, struct spec_process *p, vs_err_t *err)
{
	cleanup_free char *capp = vjson_join(path, "capabilities");
	cleanup_free char *rlp = vjson_join(path, "rlimits");
	memset(p, 0, sizeof(*p));
	if (vjson_bool(process, path, "terminal", &p->terminal, err) < 0)
		goto fail;
	json_t *cs = NULL;
	if (vjson_object(process, path, "consoleSize", &cs, err) < 0)
		goto fail;
	if (cs) {
		cleanup_free char *cp = vjson_join(path, "consoleSize");
		int64_t h = 0, w = 0;
		if (vjson_int_range(cs, cp, "height", 0, 65535, &h, err) < 0 ||
		    vjson_int_range(cs, cp, "width", 0, 65535, &w, err) < 0)
			goto fail;
		p->console_height = (unsigned)h;
		p->console_width = (unsigned)w;
	}
	if (parse_user(process, path, &p->user, err) < 0)
		goto fail;
	if (vjson_require(vjson_strv(process, path, "args", true, &p->args, NULL, err), path,
			  "args", "the command to run", err) < 0)
		goto fail;
	if (!p->args[0][0]) {
		vs_err(err, 0, "%s.args[0]: must not be empty", path);
		goto fail;
	}
	if (vjson_strv(process, path, "env", false, &p->env, NULL, err) < 0 ||
	    check_env(p->env, path, err) < 0)
		goto fail;
	if (vjson_require(vjson_string(process, path, "cwd", &p->cwd, err), path, "cwd",
			  "an absolute path", err) < 0)
		goto fail;
	if (p->cwd[0] != '/') {
		vs_err(err, 0, "%s.cwd: must be an absolute path, not `%s`", path, p->cwd);
		goto fail;
	}

	json_t *caps = NULL;
	if (vjson_object(process, path, "capabilities", &caps, err) < 0 ||
	    caps_parse(caps, capp, &p->caps, err) < 0)
		goto fail;

	json_t *rl = NULL;
	if (vjson_array(process, path, "rlimits", &rl, err) < 0 ||
	    (rl && parse_rlimits(rl, rlp, p, err) < 0))
		goto fail;

	if (vjson_bool(process, path, "noNewPrivileges", &p->no_new_privileges, err) < 0)
		goto fail;
	int64_t oom = 0;
	int rc = vjson_int_range(process, path, "oomScoreAdj", -1000, 1000, &oom, err);
	if (rc < 0)
		goto fail;
	p->has_oom_score_adj = rc > 0;
	p->oom_score_adj = (int)oom;
	if (parse_placement(process, path, p, err) < 0)
		goto fail;
	/* apparmorProfile, selinuxLabel: checked for type only; this runtime does not
	 * apply LSM labels (none is enabled on the hosts we target). */
	const char *ignored;
	if (vjson_string(process, path, "apparmorProfile", &ignored, err) < 0 ||
	    vjson_string(process, path, "selinuxLabel", &ignored, err) < 0)
		goto fail;
	return 0;
fail:
	spec_process_release(p);
	return -1;
}
