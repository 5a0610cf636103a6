/* The devices' part of a snapshot: each device's blob (its kind's save), as a section
 * named after its kind at its place in vm->devices, so load can check that the VM it
 * built from the saved config has the same devices in the same order. */
#ifndef VESSEL_VMM_SNAPSHOT_DEVICE_STATE_H
#define VESSEL_VMM_SNAPSHOT_DEVICE_STATE_H

#include "base/error.h"
#include "vmm/snapshot/state_file.h"

struct vm;

/* With the VM paused. Refuses (naming it) a device whose kind has no save. */
int device_state_save(struct vm *vm, struct snap_writer *w, vs_err_t *err);
/* After devices_pause: each device's restore with its blob, in vm->devices order. */
int device_state_restore(struct vm *vm, const struct snap_file *f, vs_err_t *err);

#endif
