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
/* obj.key is a Firecracker resource id (drive_id, iface_id): 1 to 64 of [A-Za-z0-9_]. */
int vm_json_api_id(json_t *obj, const char *key, vs_err_t *err);

/* base, then " -- " and the words (quoted when they hold spaces). NULL with errno EINVAL
 * for a word holding a double quote, which Linux cannot take. */
char *vm_build_cmdline(const char *base, char **words, int n);

extern const char vm_run_help[];

#endif
