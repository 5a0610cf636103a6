/* Device blobs to and from sections "dev.<kind>"[position] (see device_state.h). */
#include "vmm/snapshot/device_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/device.h"
#include "vmm/vm.h"

#define DEV_PREFIX "dev."

static int section_name(const struct device_kind *k, char out[SNAP_NAME_MAX], vs_err_t *err)
{
	int n = snprintf(out, SNAP_NAME_MAX, DEV_PREFIX "%s", k->name);
	if (n < 0 || n >= SNAP_NAME_MAX)
		return vs_err(err, 0, "device kind `%s`: name too long for a snapshot section",
			      k->name);
	return 0;
}

int device_state_save(struct vm *vm, struct snap_writer *w, vs_err_t *err)
{
	if (device_check_snapshot(vm, err) < 0)
		return -1;
	uint32_t i = 0;
	for (struct vm_device *d = vm->devices; d; d = d->next, i++) {
		char name[SNAP_NAME_MAX];
		if (section_name(d->kind, name, err) < 0)
			return -1;
		void *blob = NULL;
		size_t len = 0;
		if (d->kind->save(d->state, &blob, &len, err) < 0)
			return vs_err_wrap(err, "save device %u (%s)", i, d->kind->name);
		int rc = snap_writer_add(w, name, i, blob, len, err);
		free(blob);
		if (rc < 0)
			return -1;
	}
	return snap_writer_add(w, "devices", 0, &i, sizeof(i), err);
}

/* The device section at position i, whatever its kind (to name a mismatch). */
static const struct snap_section *at(const struct snap_file *f, uint32_t i)
{
	for (uint32_t k = 0; k < f->nsections; k++)
		if (f->sections[k].index == i &&
		    !strncmp(f->sections[k].name, DEV_PREFIX, strlen(DEV_PREFIX)))
			return &f->sections[k];
	return NULL;
}

int device_state_restore(struct vm *vm, const struct snap_file *f, vs_err_t *err)
{
	const uint32_t *count = snap_get_exact(f, "devices", 0, sizeof(*count), err);
	if (!count)
		return -1;
	uint32_t n = 0;
	for (struct vm_device *d = vm->devices; d; d = d->next)
		n++;
	if (*count != n)
		return vs_err(err, 0,
			      "state file has %u devices, the VM built from its config has %u",
			      *count, n);
	/* Check every position before restoring any, so a mismatch leaves no device
	 * half-restored. */
	uint32_t i = 0;
	for (struct vm_device *d = vm->devices; d; d = d->next, i++) {
		const struct snap_section *s = at(f, i);
		if (!s)
			return vs_err(err, 0, "state file has no device %u (%s)", i, d->kind->name);
		if (strcmp(s->name + strlen(DEV_PREFIX), d->kind->name) != 0)
			return vs_err(err, 0, "state file's device %u is `%s`, the VM's is `%s`", i,
				      s->name + strlen(DEV_PREFIX), d->kind->name);
		if (!d->kind->restore)
			return vs_err(err, 0, "device %u (%s) cannot be restored", i,
				      d->kind->name);
	}
	i = 0;
	for (struct vm_device *d = vm->devices; d; d = d->next, i++) {
		const struct snap_section *s = at(f, i);
		if (d->kind->restore(d->state, s->data, s->len, err) < 0)
			return vs_err_wrap(err, "restore device %u (%s)", i, d->kind->name);
	}
	return 0;
}
