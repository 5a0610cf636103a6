/* linux object of config.json. */
#include "oci/spec.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <time.h>

#include "base/json.h"
#include "base/util.h"
#include "sandbox/sandbox.h"
#include "oci/devices.h"
#include "oci/seccomp.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static const struct {
	const char *name;
	int flag;
} ns_table[NS_COUNT] = {
	[NS_PID] = {"pid", CLONE_NEWPID},     [NS_NET] = {"network", CLONE_NEWNET},
	[NS_MNT] = {"mount", CLONE_NEWNS},    [NS_IPC] = {"ipc", CLONE_NEWIPC},
	[NS_UTS] = {"uts", CLONE_NEWUTS},     [NS_USER] = {"user", CLONE_NEWUSER},
	[NS_CGROUP] = {"cgroup", CLONE_NEWCGROUP}, [NS_TIME] = {"time", CLONE_NEWTIME},
};

json_t *spec_namespaces_json(void)
{
	json_t *a = json_array();
	for (int t = 0; a && t < NS_COUNT; t++)
		json_array_append_new(a, json_string(ns_table[t].name));
	return a;
}

const char *spec_ns_name(enum spec_ns_type t)
{
	return ns_table[t].name;
}

int spec_ns_clone_flag(enum spec_ns_type t)
{
	return ns_table[t].flag;
}

static int parse_namespaces(json_t *lx, struct spec *s, vs_err_t *err)
{
	json_t *arr = NULL;
	if (vjson_array(lx, "linux", "namespaces", &arr, err) < 0)
		return -1;
	for (size_t i = 0; i < json_array_size(arr); i++) {
		cleanup_free char *ip = vjson_index("linux.namespaces", i);
		json_t *o = json_array_get(arr, i);
		if (!json_is_object(o))
			return vs_err(err, 0, "%s: must be an object", ip);
		const char *type = NULL, *path = NULL;
		if (vjson_require(vjson_string(o, ip, "type", &type, err), ip, "type",
				  "pid, network, mount, ipc, uts, user, cgroup or time", err) < 0 ||
		    vjson_string(o, ip, "path", &path, err) < 0)
			return -1;
		int t;
		for (t = 0; t < NS_COUNT; t++)
			if (strcmp(ns_table[t].name, type) == 0)
				break;
		if (t == NS_COUNT)
			return vs_err(err, 0, "%s.type: unknown namespace type `%s`", ip, type);
		if (s->ns[t].enabled)
			return vs_err(err, 0, "%s.type: namespace `%s` is listed twice", ip, type);
		if (path && path[0] != '/')
			return vs_err(err, 0, "%s.path: must be an absolute path", ip);
		s->ns[t].enabled = true;
		s->ns[t].path = path && *path ? path : NULL;
	}
	return 0;
}

int spec_parse_id_mappings(json_t *obj, const char *path, const char *key,
			   struct spec_id_mapping **out, size_t *n, vs_err_t *err)
{
	json_t *arr = NULL;
	if (vjson_array(obj, path, key, &arr, err) < 0)
		return -1;
	size_t count = json_array_size(arr);
	if (!count)
		return 0;
	cleanup_free char *kp = vjson_join(path, key);
	/* the kernel takes at most 340 lines in uid_map */
	if (count > 340)
		return vs_err(err, 0, "%s: at most 340 mappings", kp);
	*out = calloc(count, sizeof(**out));
	if (!*out)
		return vs_err(err, ENOMEM, "%s", kp);
	for (size_t i = 0; i < count; i++) {
		cleanup_free char *ip = vjson_index(kp, i);
		json_t *o = json_array_get(arr, i);
		struct spec_id_mapping *m = &(*out)[i];
		if (!json_is_object(o))
			return vs_err(err, 0, "%s: must be an object", ip);
		if (vjson_require(vjson_uint32(o, ip, "containerID", &m->container_id, err), ip,
				  "containerID", "first id in the container", err) < 0 ||
		    vjson_require(vjson_uint32(o, ip, "hostID", &m->host_id, err), ip, "hostID",
				  "first id on the host", err) < 0 ||
		    vjson_require(vjson_uint32(o, ip, "size", &m->size, err), ip, "size",
				  "how many ids", err) < 0)
			return -1;
		if (m->size == 0)
			return vs_err(err, 0, "%s.size: must be at least 1", ip);
		if ((uint64_t)m->container_id + m->size > UINT32_MAX ||
		    (uint64_t)m->host_id + m->size > UINT32_MAX)
			return vs_err(err, 0, "%s: the range passes 4294967295", ip);
	}
	*n = count;
	return 0;
}

static int parse_devices(json_t *lx, struct spec *s, vs_err_t *err)
{
	json_t *arr = NULL;
	if (vjson_array(lx, "linux", "devices", &arr, err) < 0)
		return -1;
	size_t n = json_array_size(arr);
	if (!n)
		return 0;
	s->devices = calloc(n, sizeof(*s->devices));
	if (!s->devices)
		return vs_err(err, ENOMEM, "linux.devices");
	for (size_t i = 0; i < n; i++) {
		cleanup_free char *ip = vjson_index("linux.devices", i);
		json_t *o = json_array_get(arr, i);
		struct spec_device *d = &s->devices[i];
		const char *type = NULL;
		if (!json_is_object(o))
			return vs_err(err, 0, "%s: must be an object", ip);
		if (vjson_require(vjson_string(o, ip, "path", &d->path, err), ip, "path",
				  "where the device appears in the container", err) < 0 ||
		    vjson_require(vjson_string(o, ip, "type", &type, err), ip, "type",
				  "c, b, u or p", err) < 0)
			return -1;
		if (d->path[0] != '/' || strstr(d->path, ".."))
			return vs_err(err, 0, "%s.path: must be an absolute path without `..`",
				      ip);
		if (strlen(type) != 1 || !strchr("cbup", type[0]))
			return vs_err(err, 0, "%s.type: must be c, b, u or p, not `%s`", ip, type);
		d->type = type[0];
		int rm = vjson_int_range(o, ip, "major", 0, 0xfff, &d->major, err);
		int rn = vjson_int_range(o, ip, "minor", 0, 0xfffff, &d->minor, err);
		if (rm < 0 || rn < 0)
			return -1;
		if (d->type != 'p' && (!rm || !rn))
			return vs_err(err, 0, "%s: major and minor are required for type %c", ip,
				      d->type);
		uint32_t mode = 0, uid = 0, gid = 0;
		int r = vjson_uint32(o, ip, "fileMode", &mode, err);
		if (r < 0)
			return -1;
		/* podman passes the host node's st_mode, file type bits included: those are
		 * fine when they say the same as `type` */
		if (r > 0 && mode > 07777) {
			mode_t kind = d->type == 'b' ? S_IFBLK : d->type == 'p' ? S_IFIFO : S_IFCHR;
			if ((mode & ~07777u) != kind)
				return vs_err(err, 0,
					      "%s.fileMode: must be a permission mode (<= 07777), with "
					      "file type bits only if they match type `%c`",
					      ip, d->type);
			mode &= 07777;
		}
		d->has_mode = r > 0;
		d->mode = mode;
		if ((r = vjson_uint32(o, ip, "uid", &uid, err)) < 0)
			return -1;
		d->has_uid = r > 0;
		d->uid = uid;
		if ((r = vjson_uint32(o, ip, "gid", &gid, err)) < 0)
			return -1;
		d->has_gid = r > 0;
		d->gid = gid;
		s->n_devices++;
	}
	return 0;
}

/* Only namespaced sysctls may be set: the rest would change the host. */
static bool sysctl_is_namespaced(const char *key, const struct spec *s)
{
	static const char *const ipc_keys[] = {"kernel.msgmax",	  "kernel.msgmnb",
					       "kernel.msgmni",	  "kernel.sem",
					       "kernel.shmall",	  "kernel.shmmax",
					       "kernel.shmmni",	  "kernel.shm_rmid_forced"};
	for (size_t i = 0; i < ARRAY_SIZE(ipc_keys); i++)
		if (strcmp(key, ipc_keys[i]) == 0)
			return s->ns[NS_IPC].enabled;
	if (vs_str_has_prefix(key, "fs.mqueue."))
		return s->ns[NS_IPC].enabled;
	if (vs_str_has_prefix(key, "net."))
		return s->ns[NS_NET].enabled;
	if (strcmp(key, "kernel.hostname") == 0 || strcmp(key, "kernel.domainname") == 0)
		return s->ns[NS_UTS].enabled;
	return false;
}

static int parse_sysctl(json_t *lx, struct spec *s, vs_err_t *err)
{
	json_t *o = NULL;
	if (vjson_object(lx, "linux", "sysctl", &o, err) < 0)
		return -1;
	size_t n = json_object_size(o);
	if (!n)
		return 0;
	s->sysctls = calloc(n, sizeof(*s->sysctls));
	if (!s->sysctls)
		return vs_err(err, ENOMEM, "linux.sysctl");
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v)
	{
		if (!json_is_string(v))
			return vs_err(err, 0, "linux.sysctl.%s: must be a string", key);
		if (!*key || strstr(key, "..") || strchr(key, '/') || key[0] == '.')
			return vs_err(err, 0, "linux.sysctl: invalid key `%s`", key);
		if (!sysctl_is_namespaced(key, s))
			return vs_err(err, 0,
				      "linux.sysctl.%s: not a namespaced sysctl, or its namespace "
				      "is not one of the container's own",
				      key);
		s->sysctls[s->n_sysctls].key = key;
		s->sysctls[s->n_sysctls].value = json_string_value(v);
		s->n_sysctls++;
	}
	return 0;
}

static int parse_propagation(json_t *lx, struct spec *s, vs_err_t *err)
{
	const char *p = NULL;
	if (vjson_string(lx, "linux", "rootfsPropagation", &p, err) <= 0)
		return err && *err ? -1 : 0;
	static const struct {
		const char *name;
		unsigned long flags;
	} t[] = {
		{"private", MS_PRIVATE},	{"rprivate", MS_PRIVATE | MS_REC},
		{"shared", MS_SHARED},		{"rshared", MS_SHARED | MS_REC},
		{"slave", MS_SLAVE},		{"rslave", MS_SLAVE | MS_REC},
		{"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
	};
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		if (strcmp(t[i].name, p) == 0) {
			s->rootfs_propagation = t[i].flags;
			return 0;
		}
	}
	return vs_err(err, 0, "linux.rootfsPropagation: unknown propagation `%s`", p);
}

static int parse_time_offsets(json_t *lx, struct spec *s, vs_err_t *err)
{
	json_t *o = NULL;
	if (vjson_object(lx, "linux", "timeOffsets", &o, err) < 0)
		return -1;
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v)
	{
		int clock;
		if (strcmp(key, "monotonic") == 0)
			clock = CLOCK_MONOTONIC;
		else if (strcmp(key, "boottime") == 0)
			clock = CLOCK_BOOTTIME;
		else
			return vs_err(err, 0, "linux.timeOffsets.%s: unknown clock (monotonic or "
					      "boottime)",
				      key);
		cleanup_free char *kp = vjson_join("linux.timeOffsets", key);
		struct spec_time_offset *t = &s->time_offsets[s->n_time_offsets];
		int64_t ns = 0;
		if (vjson_int64(v, kp, "secs", &t->secs, err) < 0 ||
		    vjson_int_range(v, kp, "nanosecs", 0, 999999999, &ns, err) < 0)
			return -1;
		t->nanosecs = (uint32_t)ns;
		t->clock = clock;
		s->n_time_offsets++;
	}
	if (s->n_time_offsets && !s->ns[NS_TIME].enabled)
		return vs_err(err, 0, "linux.timeOffsets: needs a time namespace");
	return 0;
}

static int parse_personality(json_t *lx, struct spec *s, vs_err_t *err)
{
	json_t *o = NULL;
	if (vjson_object(lx, "linux", "personality", &o, err) <= 0)
		return err && *err ? -1 : 0;
	const char *domain = NULL;
	if (vjson_require(vjson_string(o, "linux.personality", "domain", &domain, err),
			  "linux.personality", "domain", "LINUX or LINUX32", err) < 0)
		return -1;
	if (strcmp(domain, "LINUX") == 0)
		s->personality = PER_LINUX;
	else if (strcmp(domain, "LINUX32") == 0)
		s->personality = PER_LINUX32;
	else
		return vs_err(err, 0, "linux.personality.domain: must be LINUX or LINUX32");
	return 0;
}

int spec_parse_linux(json_t *lx, struct spec *s, vs_err_t *err)
{
	/* no linux object at all: still a valid (if unusual) spec */
	if (parse_namespaces(lx, s, err) < 0 ||
	    spec_parse_id_mappings(lx, "linux", "uidMappings", &s->uid_mappings,
				   &s->n_uid_mappings, err) < 0 ||
	    spec_parse_id_mappings(lx, "linux", "gidMappings", &s->gid_mappings,
				   &s->n_gid_mappings, err) < 0 ||
	    parse_devices(lx, s, err) < 0 || parse_sysctl(lx, s, err) < 0 ||
	    parse_propagation(lx, s, err) < 0 || parse_time_offsets(lx, s, err) < 0 ||
	    parse_personality(lx, s, err) < 0)
		return -1;
	if ((s->n_uid_mappings || s->n_gid_mappings) && !s->ns[NS_USER].enabled)
		return vs_err(err, 0, "linux.uidMappings: needs a user namespace");
	if (s->ns[NS_USER].enabled && !s->ns[NS_USER].path &&
	    (!s->n_uid_mappings || !s->n_gid_mappings))
		return vs_err(err, 0, "linux.uidMappings, linux.gidMappings: a new user namespace "
				      "needs both");
	if (vjson_strv(lx, "linux", "maskedPaths", false, &s->masked_paths, NULL, err) < 0 ||
	    vjson_strv(lx, "linux", "readonlyPaths", false, &s->readonly_paths, NULL, err) < 0 ||
	    vjson_string(lx, "linux", "cgroupsPath", &s->cgroups_path, err) < 0)
		return -1;
	json_t *res = NULL;
	if (vjson_object(lx, "linux", "resources", &res, err) < 0)
		return -1;
	/* the rules that keep /dev usable go after the config's own: last match wins */
	json_t *full = devices_resources_with_defaults(res, s->devices, s->n_devices);
	if (!full)
		return vs_err(err, ENOMEM, "linux.resources");
	int rc = cgroup_resources_parse(full, "linux.resources", &s->resources, err);
	json_decref(full);
	if (rc < 0)
		return -1;
	s->resources_json = res;
	json_t *rdt = NULL;
	if (vjson_object(lx, "linux", "intelRdt", &rdt, err) < 0)
		return -1;
	s->has_intel_rdt = rdt != NULL;
	if (netdev_parse(lx, s->ns[NS_NET].enabled, &s->net_devices, &s->n_net_devices, err) < 0)
		return -1;
	json_t *mpol = NULL;
	if (vjson_object(lx, "linux", "memoryPolicy", &mpol, err) < 0 ||
	    placement_parse_mempolicy(mpol, "linux.memoryPolicy", &s->mempolicy, err) < 0)
		return -1;
	json_t *sec = NULL;
	if (vjson_object(lx, "linux", "seccomp", &sec, err) < 0 ||
	    seccomp_spec_parse(sec, "linux.seccomp", &s->seccomp, err) < 0)
		return -1;
	return 0;
}
