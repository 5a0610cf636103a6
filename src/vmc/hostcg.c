#include "vmc/hostcg.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/log.h"
#include "oci/launch.h"
#include "sandbox/sandbox.h"

/* The part of linux.resources (res) that the host's cgroup takes: the VM's memory
 * (mem_mib, 0: none), the CPU shares, quota and set. */
static json_t *host_resources(json_t *res, unsigned long mem_mib)
{
	json_t *out = json_object();
	if (mem_mib &&
	    json_integer_value(json_object_get(json_object_get(res, "memory"), "limit")) > 0)
		json_object_set_new(
		    out, "memory",
		    json_pack("{s:I}", "limit",
			      (json_int_t)(mem_mib + VMC_HOSTCG_OVERHEAD_MIB) << 20));
	json_t *cpu = json_object_get(res, "cpu"), *host_cpu = json_object();
	static const char *const keys[] = {"shares", "quota", "period", "cpus", "mems"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(cpu, keys[i]);
		if (v)
			json_object_set(host_cpu, keys[i], v);
	}
	if (json_object_size(host_cpu))
		json_object_set(out, "cpu", host_cpu);
	json_decref(host_cpu);
	return out;
}

static int record(struct container_state *st, struct cgroup *cg, vs_err_t *err)
{
	json_decref(st->cgroup);
	st->cgroup = cg ? cgroup_to_json(cg) : NULL;
	if (cg && !st->cgroup)
		return vs_err(err, ENOMEM, "state");
	return state_save(st, err);
}

int vmc_hostcg_make(const struct vs_globals *g, json_t *config, unsigned long mem_mib,
		    struct container_state *st, struct cgroup **out, vs_err_t *err)
{
	*out = NULL;
	const char *path =
	    json_string_value(json_object_get(json_object_get(config, "linux"), "cgroupsPath"));
	char *systemd = NULL;
	if (g->systemd_cgroup && launch_systemd_cgroup_path(path, st->id, &systemd, err) < 0)
		return -1;
	struct cgroup *cg = NULL;
	int rc = cgroup_plan(systemd ? systemd : path, st->id, &cg, err);
	free(systemd);
	if (rc < 0 || record(st, cg, err) < 0) {
		cgroup_free(cg);
		return -1;
	}
	vs_err_t why = NULL;
	if (cgroup_make(cg, &why) < 0) {
		if (geteuid() == 0 || (path && *path)) {
			*err = why;
			cgroup_free(cg);
			return -1;
		}
		vs_warn("rootless: the microVM has no cgroup of its own on the host and its CPU "
			"quota is not applied there (%s)",
			why->msg);
		vs_err_free(&why);
		cgroup_free(cg);
		return record(st, NULL, err);
	}
	json_t *res_json =
	    host_resources(json_object_get(json_object_get(config, "linux"), "resources"), mem_mib);
	struct cgroup_resources *res = NULL;
	rc = cgroup_resources_parse(res_json, "linux.resources", &res, err);
	if (rc == 0)
		rc = cgroup_apply(cg, res, err);
	cgroup_resources_free(res);
	json_decref(res_json);
	/* as made: cgroup_apply may have switched a controller on that delete gives back */
	if (rc == 0)
		rc = record(st, cg, err);
	if (rc < 0) {
		vs_err_t derr = NULL;
		cgroup_destroy(cg, &derr);
		vs_err_free(&derr);
		cgroup_free(cg);
		return vs_err_wrap(err, "the host cgroup of container `%s`'s microVM", st->id);
	}
	*out = cg;
	return 0;
}

int vmc_hostcg_update(struct container_state *st, json_t *resources, vs_err_t *err)
{
	json_t *res_json = st->cgroup ? host_resources(resources, 0) : NULL;
	if (json_object_size(res_json) == 0) {
		json_decref(res_json);
		return 0;
	}
	struct cgroup *cg = NULL;
	struct cgroup_resources *res = NULL;
	int rc = -1;
	if (cgroup_from_json(st->cgroup, &cg, err) == 0 &&
	    cgroup_resources_parse(res_json, "resources", &res, err) == 0 &&
	    cgroup_apply(cg, res, err) == 0)
		rc = record(st, cg, err);
	cgroup_resources_free(res);
	cgroup_free(cg);
	json_decref(res_json);
	return rc < 0 ? vs_err_wrap(err, "the host cgroup of container `%s`'s microVM", st->id) : 0;
}
