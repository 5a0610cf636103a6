/* The table of device kinds, and a VM's list of devices. */
#include "vmm/device.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/devices/vmgenid.h"
#include "vmm/virtio/balloon.h"
#include "vmm/virtio/blk.h"
#include "vmm/virtio/fs.h"
#include "vmm/virtio/net.h"
#include "vmm/virtio/rng.h"
#include "vmm/virtio/virtio.h"
#include "vmm/virtio/vsock.h"
#include "vmm/vm.h"

/* One row per kind, in build order (see device.h). */
const struct device_kind *const device_kinds[] = {
    &virtio_blk_kind, /* --disk, /drives */
    &virtio_net_kind, /* --net, /network-interfaces */
    &virtio_rng_kind, /* --rng, /entropy */
    &virtio_vsock_kind, /* --vsock, /vsock */
    &virtio_balloon_kind, /* --balloon, /balloon */
    &virtio_fs_kind,  /* --fs (vhost-user to virtiofsd) */
    &serial_kind,     /* COM1 */
    &i8042_kind,      /* reset through the keyboard controller */
    &rtc_kind,	      /* CMOS clock */
    &pm_kind,	      /* ACPI sleep and reset registers */
    &vmgenid_kind,    /* VM generation ID, new on every snapshot load */
};
const size_t device_nkinds = sizeof(device_kinds) / sizeof(device_kinds[0]);

const struct device_kind *device_kind_by_name(const char *name)
{
	for (size_t i = 0; i < device_nkinds; i++)
		if (strcmp(device_kinds[i]->name, name) == 0)
			return device_kinds[i];
	return NULL;
}

const struct device_kind *device_kind_by_flag(const char *flag)
{
	for (size_t i = 0; i < device_nkinds; i++)
		if (device_kinds[i]->cli_flag && strcmp(device_kinds[i]->cli_flag, flag) == 0)
			return device_kinds[i];
	return NULL;
}

int device_add(struct vm *vm, const struct device_kind *kind, const void *config, vs_err_t *err)
{
	struct vm_device *d = calloc(1, sizeof(*d));
	if (!d)
		return vs_err(err, ENOMEM, "%s", kind->name);
	d->kind = kind;
	d->state = kind->create(vm, config, err);
	if (!d->state) {
		free(d);
		return -1;
	}
	struct vm_device **tail = &vm->devices;
	while (*tail)
		tail = &(*tail)->next;
	*tail = d;
	return 0;
}

void *device_find(const struct vm *vm, const struct device_kind *kind)
{
	for (const struct vm_device *d = vm->devices; d; d = d->next)
		if (d->kind == kind)
			return d->state;
	return NULL;
}

int device_update(struct vm *vm, const struct device_kind *kind, unsigned index, json_t *body,
		  vs_err_t *err)
{
	if (!kind->update)
		return vs_err(err, 0, "a %s can't be changed once the microVM is started",
			      kind->name);
	unsigned n = 0;
	for (struct vm_device *d = vm->devices; d; d = d->next)
		if (d->kind == kind && n++ == index)
			return kind->update(d->state, body, err);
	return vs_err(err, 0, "the microVM has no %s number %u", kind->name, index + 1);
}

void devices_free(struct vm *vm)
{
	while (vm->devices) {
		struct vm_device *d = vm->devices;
		vm->devices = d->next;
		if (d->kind->destroy)
			d->kind->destroy(d->state);
		free(d);
	}
}

void devices_pause(struct vm *vm)
{
	for (struct vm_device *d = vm->devices; d; d = d->next)
		if (d->kind->virtio)
			virtio_mmio_pause(d->state);
}

void devices_resume(struct vm *vm)
{
	for (struct vm_device *d = vm->devices; d; d = d->next)
		if (d->kind->virtio)
			virtio_mmio_resume(d->state);
}

int device_check_snapshot(const struct vm *vm, vs_err_t *err)
{
	for (const struct vm_device *d = vm->devices; d; d = d->next)
		if (!d->kind->save || !d->kind->restore)
			return vs_err(err, 0,
				      "the VM has a %s device, which cannot be snapshotted yet "
				      "(it has no save/restore)",
				      d->kind->name);
	return 0;
}
