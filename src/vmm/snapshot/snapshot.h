/* A whole snapshot of a VM: the state file (its config, KVM's state, every device) and the
 * memory file, written from a paused VM and read back into a VM the builder made from the
 * saved config. The component's door: the controller calls only this; the parts
 * (state_file, kvm_state, device_state, mem_file) stay inside. */
#ifndef VESSEL_VMM_SNAPSHOT_SNAPSHOT_H
#define VESSEL_VMM_SNAPSHOT_SNAPSHOT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "vmm/snapshot/state_file.h"

struct vm;

/* The section that holds the VM's description (Firecracker's JSON document, as the API
 * keeps it), so a load can build the same VM. */
#define SNAP_CONFIG_SECTION "config"
#define SNAP_CONFIG_MAX (1u << 20)

enum snapshot_type { SNAPSHOT_FULL, SNAPSHOT_DIFF };

/* With the VM paused. Full writes every page; Diff the pages written since the last
 * snapshot (or the build), which needs the VM built with track_dirty_pages. The memory
 * file is written before the state file, and the state file goes to its name last (via
 * PATH.tmp), so a state file under its name always has its memory file complete. */
int snapshot_create(struct vm *vm, const char *config_json, enum snapshot_type type,
		    const char *state_path, const char *mem_path, vs_err_t *err);

/* For a migration: whether the VM can be saved at all (every device has save and restore),
 * asked before anything moves; then, paused, its state file's bytes (malloc'd), as
 * snapshot_create would write them, without a memory file. */
int snapshot_check(const struct vm *vm, vs_err_t *err);
int snapshot_save_state(struct vm *vm, const char *config_json, uint8_t **out, size_t *len,
			vs_err_t *err);

/* A state file read and checked whole (format version, CRC, every section header) and its
 * config parsed; nothing of a VM exists yet. */
struct snapshot {
	struct snap_file file;
	json_t *config;
};
int snapshot_open(const char *state_path, struct snapshot *s, vs_err_t *err);
/* The same from bytes in memory (a migration's STATE), which must outlive s. */
int snapshot_open_bytes(const void *buf, size_t len, struct snapshot *s, vs_err_t *err);
void snapshot_close(struct snapshot *s);

/* Whether this host can run the snapshot's vCPUs (cpu_compat.h): each vCPU's saved CPUID
 * against what this host's KVM would give it; before anything of the VM is built. Another
 * model or stepping of the same family is logged, not refused. */
int snapshot_check_cpu(const struct snapshot *s, vs_err_t *err);

/* Into a VM vm_build_restore made from s->config, before its vCPUs run: the devices (left
 * paused: devices_resume lets them go), the VM's chips and clock, each vCPU. On failure
 * the VM is half-restored and must be freed, never run. */
int snapshot_restore(struct vm *vm, const struct snapshot *s, vs_err_t *err);

/* A Diff's memory file written over its base's (same size), which then is the Diff
 * snapshot's full memory file: load it with the Diff's state file. */
int snapshot_merge_memory(const char *base, const char *diff, vs_err_t *err);

#endif
