/* config.json -> validated C structs. Every field is checked here, once, so the
 * rest of the runtime works on values it can trust. Errors name the field:
 * `config.json: process.args: must be a non-empty array of strings`. */
#ifndef VESSEL_OCI_SPEC_H
#define VESSEL_OCI_SPEC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

#include "base/error.h"
#include "oci/caps.h"
#include "oci/netdev.h"
#include "oci/placement.h"

struct cgroup_resources;
struct seccomp_spec;

struct spec_rlimit {
	int resource; /* RLIMIT_* */
	uint64_t soft, hard;
};

struct spec_user {
	uid_t uid;
	gid_t gid;
	bool has_umask;
	mode_t umask;
	gid_t *additional_gids;
	size_t n_additional_gids;
};

struct spec_process {
	bool terminal;
	unsigned console_height, console_width;
	struct spec_user user;
	char **args;
	char **env;
	const char *cwd;
	struct caps_spec caps;
	struct spec_rlimit *rlimits;
	size_t n_rlimits;
	bool no_new_privileges;
	bool has_oom_score_adj;
	int oom_score_adj;
	struct placement_sched sched;	/* scheduler */
	struct placement_ioprio ioprio; /* ioPriority */
};

struct spec_mount {
	const char *destination;
	const char *type;   /* may be NULL for bind mounts */
	const char *source; /* may be NULL */
	unsigned long flags;	   /* MS_* set */
	unsigned long clear_flags; /* MS_* explicitly cleared (rw, suid, ...) */
	unsigned long propagation; /* MS_SHARED/SLAVE/PRIVATE/UNBINDABLE (+MS_REC) or 0 */
	bool bind, recursive;
	char *data; /* comma-joined options the kernel parses itself */
	char *abs_source; /* a relative bind source made absolute against the bundle */
	/* an idmapped mount (uidMappings/gidMappings, or the idmap/ridmap options with the
	 * container's own mappings): on-disk id containerID shows as hostID */
	bool idmap, idmap_recursive;
	uint64_t rattr_set, rattr_clr; /* MOUNT_ATTR_* of rro, rnosuid, ... for the whole tree */
	struct spec_id_mapping *uid_mappings, *gid_mappings;
	size_t n_uid_mappings, n_gid_mappings;
};

enum spec_ns_type { NS_PID, NS_NET, NS_MNT, NS_IPC, NS_UTS, NS_USER, NS_CGROUP, NS_TIME, NS_COUNT };

struct spec_namespace {
	bool enabled;	  /* listed in linux.namespaces */
	const char *path; /* join this one instead of creating (NULL: create) */
};

struct spec_id_mapping {
	uint32_t container_id, host_id, size;
};

struct spec_device {
	const char *path;
	char type; /* 'c', 'b', 'u', 'p' */
	int64_t major, minor;
	bool has_mode;
	mode_t mode;
	bool has_uid, has_gid;
	uid_t uid;
	gid_t gid;
};

struct spec_hook {
	const char *path;
	char **args;
	char **env;
	int timeout; /* seconds, 0 = none */
};

enum spec_hook_kind {
	HOOK_PRESTART,
	HOOK_CREATE_RUNTIME,
	HOOK_CREATE_CONTAINER,
	HOOK_START_CONTAINER,
	HOOK_POSTSTART,
	HOOK_POSTSTOP,
	HOOK_KIND_COUNT
};

struct spec_hooks {
	struct spec_hook *list[HOOK_KIND_COUNT];
	size_t n[HOOK_KIND_COUNT];
};

struct spec_sysctl {
	const char *key, *value;
};

struct spec_time_offset {
	int clock; /* CLOCK_MONOTONIC or CLOCK_BOOTTIME */
	int64_t secs;
	uint32_t nanosecs;
};

struct spec {
	json_t *json; /* owns every const char * above */
	const char *oci_version;
	char *root_path; /* absolute */
	bool root_readonly;
	const char *hostname, *domainname;
	struct spec_process process;
	bool has_process;
	char *bundle; /* absolute, or NULL when parsed without one */
	struct spec_mount *mounts;
	size_t n_mounts;
	struct spec_hooks hooks;
	json_t *hooks_json; /* linux: kept for state.json (poststart/poststop run later) */
	json_t *annotations;
	/* linux */
	struct spec_namespace ns[NS_COUNT];
	struct spec_id_mapping *uid_mappings, *gid_mappings;
	size_t n_uid_mappings, n_gid_mappings;
	struct spec_device *devices;
	size_t n_devices;
	struct spec_sysctl *sysctls;
	size_t n_sysctls;
	char **masked_paths, **readonly_paths;
	const char *cgroups_path;
	struct cgroup_resources *resources;
	json_t *resources_json; /* devices rules are also needed as JSON for defaults */
	struct seccomp_spec *seccomp;
	unsigned long rootfs_propagation; /* 0 = default (MS_REC|MS_SLAVE) */
	struct spec_time_offset time_offsets[2];
	size_t n_time_offsets;
	int personality; /* -1 = unset */
	struct placement_mempolicy mempolicy;
	bool has_intel_rdt; /* linux.intelRdt given: refused at create (see launch.c) */
	struct netdev *net_devices;
	size_t n_net_devices;
};

/* Loads <bundle>/config.json. root.path is made absolute against the bundle. */
int spec_load(const char *bundle, struct spec **out, vs_err_t *err);
/* Parses an already loaded document (the fuzz harness and unit tests use this).
 * bundle may be NULL: then root.path is kept as given. Takes a reference to json. */
int spec_parse(json_t *json, const char *bundle, struct spec **out, vs_err_t *err);
void spec_free(struct spec *s);

/* process object alone (also `exec --process FILE` later). */
int spec_parse_process(json_t *process, const char *path, struct spec_process *out,
		       vs_err_t *err);
void spec_process_release(struct spec_process *p);

int spec_parse_mounts(json_t *mounts, struct spec *s, vs_err_t *err);
/* "prestart", "createRuntime", ...: the config.json key of a hook kind */
const char *spec_hook_kind_name(enum spec_hook_kind kind);
int spec_parse_hooks(json_t *hooks, const char *path, struct spec_hooks *out, vs_err_t *err);
void spec_hooks_release(struct spec_hooks *h);
int spec_parse_linux(json_t *linux_obj, struct spec *s, vs_err_t *err);
/* For `features`: what the parsers take, from their own tables. */
json_t *spec_mount_options_json(void);
json_t *spec_namespaces_json(void);
/* obj.key as an array of {containerID, hostID, size}; absent leaves *out NULL, *n 0. */
int spec_parse_id_mappings(json_t *obj, const char *path, const char *key,
			   struct spec_id_mapping **out, size_t *n, vs_err_t *err);

const char *spec_ns_name(enum spec_ns_type t);
int spec_ns_clone_flag(enum spec_ns_type t);

#endif
