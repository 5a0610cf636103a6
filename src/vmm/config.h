/* One VM's configuration, whichever way it came: `vm run`'s arguments (config_argv.c), a
 * JSON config file in Firecracker's schema (config_json.c), or API calls (later). The
 * builder turns it into a VM; nothing here opens a file or touches KVM. */
#ifndef VESSEL_VMM_CONFIG_H
#define VESSEL_VMM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "base/ratelimit.h"
#include "vmm/device.h"

#define VM_DEFAULT_MEMORY (128ULL << 20)
#define VM_CPUS_CEILING 4096 /* sanity bound before KVM's own limit is known */
#define VM_MAX_VIRTIO 16     /* virtio devices of one VM (--disk, --net, --rng together) */

/* A configured device: its kind, the kind's config, and where it came from ("--disk
 * /x.img,ro", "drives[0]"), which prefixes the errors of making it. */
struct vm_config_device {
	const struct device_kind *kind;
	void *config;
	char *origin;
};

struct vm_config {
	/* Firecracker's boot-source; NULL kernel: the default image */
	char *kernel, *initrd, *cmdline;
	/* machine-config */
	unsigned cpus;
	uint64_t memory;
	bool hugepages;
	bool track_dirty; /* track_dirty_pages: KVM's dirty log and the VMM's, for Diff snapshots */
	bool merge;	  /* vessel's mem_merge / --merge: guest RAM offered to KSM */
	bool shared_memory; /* vessel's mem_shared / --shared-memory: RAM in a memfd */
	/* vessel's own */
	bool demo, no_virtio_cmdline;
	char **command; /* words after `--`, for init's argv (borrowed from argv) */
	int ncommand;
	struct vm_config_device *devices; /* in the order configured */
	unsigned ndevices;
};

/* Defaults: 1 vCPU, 128 MiB, the default image, no devices. */
void vm_config_init(struct vm_config *c);
void vm_config_free(struct vm_config *c);

/* Appends a device of kind with a zeroed config of kind->config_size bytes for the caller
 * to fill (*config; NULL for a kind without one). Refuses more than VM_MAX_VIRTIO virtio
 * devices. A failed fill should call vm_config_drop_last. */
int vm_config_add_device(struct vm_config *c, const struct device_kind *kind, const char *origin,
			 void **config, vs_err_t *err);
void vm_config_drop_last(struct vm_config *c);
unsigned vm_config_count(const struct vm_config *c, const struct device_kind *kind);

/* Checks that do not need the host: --demo without a kernel file, ... */
int vm_config_check(const struct vm_config *c, vs_err_t *err);

int vm_parse_cpus(const char *s, unsigned *out, vs_err_t *err);
int vm_parse_memory(const char *s, uint64_t *out, vs_err_t *err);

/* One option of a device's CLI spec: "KEY=VALUE" (val set) or a bare "FLAG" (val NULL). */
struct vm_spec_opt {
	const char *text, *key, *val; /* into the spec: not terminated */
	size_t len, klen, vlen;
};
/* The kinds' from_cli walk a spec's comma-separated options with this: *pos starts at
 * spec (the first call refuses a spec with a byte that isn't printable: errors quote it).
 * 1 with *o, 0 at the end, -1 with err for an empty option (a stray comma). */
int vm_spec_next(const char *spec, const char **pos, struct vm_spec_opt *o, vs_err_t *err);
/* o's key is key. */
bool vm_spec_key(const struct vm_spec_opt *o, const char *key);

/* `vessel vm run`'s arguments (argv[0] is "run"). On failure returns the exit status the
 * error deserves (VM_EXIT_USAGE for a bad command line, VM_EXIT_ERROR for a bad device
 * spec) with err; 0 on success. *help is set for --help. */
int vm_config_from_argv(struct vm_config *c, int argc, char **argv, bool *help, vs_err_t *err);

/* A Firecracker config file (--config-file): boot-source, machine-config, drives,
 * network-interfaces, entropy; errors name the field (`vm.json: drives[0]: path_on_host:
 * is required`). The values land in c over what it held. */
int vm_config_from_json_file(struct vm_config *c, const char *path, vs_err_t *err);
int vm_config_from_json(struct vm_config *c, json_t *root, vs_err_t *err);
/* The same without boot-source being required: the API checks each call's document
 * before InstanceStart, when the boot source may not be given yet. */
int vm_config_from_json_partial(struct vm_config *c, json_t *root, vs_err_t *err);

/* For the kinds' from_json: Firecracker's RateLimiter object at obj.key (absent: rl is left
 * as it was); and a refusal of any member of obj not in keys (NULL-terminated). */
int vm_json_rate_limiter(json_t *obj, const char *key, struct rate_limiter *rl, vs_err_t *err);
int vm_json_only(json_t *obj, const char *const *keys, vs_err_t *err);
/* A RateLimiter of a PATCH (Firecracker's rule): a bucket it gives replaces the device's,
 * full (size 0: no limit); a bucket it leaves out stays as it is, tokens and all. */
struct rl_patch {
	bool bw_set, ops_set;
	struct rate_limiter rl; /* the buckets given */
};
/* obj.key into p: 1 given, 0 absent, -1 with err naming the member. */
int vm_json_rate_limiter_patch(json_t *obj, const char *key, struct rl_patch *p, vs_err_t *err);
void rl_patch_apply(struct rate_limiter *rl, const struct rl_patch *p);
/* obj.key is a Firecracker resource id (drive_id, iface_id): 1 to 64 of [A-Za-z0-9_]. */
int vm_json_api_id(json_t *obj, const char *key, vs_err_t *err);
/* In a VM's description (Firecracker's JSON), the interface iface_id goes on another tap
 * (a snapshot's network_overrides, a migration's --net-override): 0, -1 with errno ENOENT
 * when the description has no such interface, ENOMEM. */
int vm_json_set_tap(json_t *doc, const char *iface_id, const char *tap);

/* base, then " -- " and the words (quoted when they hold spaces). NULL with errno EINVAL
 * for a word holding a double quote, which Linux cannot take. */
char *vm_build_cmdline(const char *base, char **words, int n);

extern const char vm_run_help[];

#endif
