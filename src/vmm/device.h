/* Device kinds and the devices a VM owns.
 *
 * Every device a VM can have is one struct device_kind: how it is configured (a command-
 * line flag, a Firecracker API resource, a member of a JSON config file), how a config
 * becomes a device of a VM, and how the device is saved and restored. The table of kinds
 * is devices/registry.c; a new device is its own file plus one row there. A VM owns its
 * devices as a list of (kind, state): vm_destroy frees them, a snapshot walks them, and a
 * kind without save/restore makes the VM refuse a snapshot, saying which device. */
#ifndef VESSEL_VMM_DEVICE_H
#define VESSEL_VMM_DEVICE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"

struct vm;

struct device_kind {
	const char *name;     /* messages and snapshots: "drive", "serial" */
	const char *cli_flag; /* "--disk"; NULL: not on the command line */
	bool cli_value;	      /* the flag takes a SPEC; else it is a switch (at most once) */
	/* A switch that may take a SPEC all the same: `--rng=SPEC`, or the next word when this
	 * says it is one (a word that starts with one of the spec's keys). NULL: it can't. */
	bool (*cli_spec_follows)(const char *word);
	const char *api_path; /* its Firecracker API resource: "/drives/{drive_id}"; NULL: none */
	const char *json_key; /* its member of a config file: "drives"; NULL: none */
	bool json_array;      /* that member is an array of objects (else one object) */
	bool builtin;	      /* every VM has exactly one, with no config (the PC's devices) */
	bool virtio;	      /* the state is its struct virtio_mmio (DSDT, command line) */
	/* another process maps guest RAM (a vhost-user back-end): a VM with one gets its RAM
	 * in a shared memfd (GUEST_MEM_SHARED) whatever its config says */
	bool shares_ram;

	/* The config: config_size bytes, zeroed, filled by from_cli or from_json (either may be
	 * NULL: not configurable that way), freed by config_free (may be NULL). Errors name the
	 * option or field without the flag; the caller prefixes where the config came from. */
	size_t config_size;
	int (*from_cli)(const char *spec, void *config, vs_err_t *err);
	int (*from_json)(json_t *obj, void *config, vs_err_t *err);
	void (*config_free)(void *config);

	/* config -> a device of vm (config is NULL for a builtin kind); returns its state.
	 * destroy frees it when the VM goes (its workers stop first). */
	void *(*create)(struct vm *vm, const void *config, vs_err_t *err);
	void (*destroy)(void *state);

	/* A snapshot's part of the device (snapshot/, later). NULL: the kind cannot be
	 * snapshotted, and device_check_snapshot says so. */
	int (*save)(void *state, void **blob, size_t *len, vs_err_t *err);
	int (*restore)(void *state, const void *blob, size_t len, vs_err_t *err);

	/* A built device changed while the VM runs or is paused: the API's PATCH body
	 * (Firecracker's PartialDrive, PartialNetworkInterface) with its id checked. Every
	 * member is checked, and what can fail (opening a new file) is done, before anything
	 * changes: -1 with err naming the member leaves the device as it was. The controller's
	 * thread. NULL: the kind can't be changed once built. */
	int (*update)(void *state, json_t *body, vs_err_t *err);
};

/* One device of a VM (vm->devices, in the order they were added). */
struct vm_device {
	const struct device_kind *kind;
	void *state;
	struct vm_device *next;
};

/* The table, in the order a VM's devices are built (disks first, so a Linux guest's first
 * disk is vda at the first virtio window; then interfaces, entropy, the PC's devices). */
extern const struct device_kind *const device_kinds[];
extern const size_t device_nkinds;

const struct device_kind *device_kind_by_name(const char *name);
const struct device_kind *device_kind_by_flag(const char *flag);

/* Makes a device of kind from config and gives it to vm. On failure nothing of it is left
 * in the VM. */
int device_add(struct vm *vm, const struct device_kind *kind, const void *config, vs_err_t *err);
/* The first device of that kind, or NULL. */
void *device_find(const struct vm *vm, const struct device_kind *kind);
/* kind->update on the index-th device of that kind (its order in the config, as built). */
int device_update(struct vm *vm, const struct device_kind *kind, unsigned index, json_t *body,
		  vs_err_t *err);
/* Frees every device of vm (vm_destroy calls it first: device workers touch guest RAM). */
void devices_free(struct vm *vm);
/* A pause, with the vCPUs parked: every device's worker finishes what it has in flight
 * and waits; devices_resume lets them go on. Devices without workers need nothing. */
void devices_pause(struct vm *vm);
void devices_resume(struct vm *vm);
/* 0 if every device of vm can be saved and restored; else -1 naming the first that can't. */
int device_check_snapshot(const struct vm *vm, vs_err_t *err);

/* The kinds of the PC's own devices (devices/legacy.c); the console feeds the serial port. */
extern const struct device_kind serial_kind, i8042_kind, rtc_kind, pm_kind;
/* Firecracker's SendCtrlAltDel: the keys typed on the i8042's keyboard (devices/legacy.c). */
int device_ctrl_alt_del(struct vm *vm, vs_err_t *err);

#endif
