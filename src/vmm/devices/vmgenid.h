/* The VM generation ID (Microsoft's VMGenID, which Linux >= 5.18 reads in
 * drivers/virt/vmgenid.c): 16 random bytes at a guest-physical address the DSDT gives,
 * that change whenever the VM may have been duplicated. On the change the VMM raises the
 * Generic Event Device's interrupt, whose _EVT notifies the ID's device, and the guest
 * mixes the new ID into its RNG: every clone of a snapshot stops sharing its entropy with
 * the others.
 *
 * vessel changes it on every snapshot load: the kind's restore (restore is called on every
 * load) writes a fresh ID and raises the interrupt. A live migration is not a duplicate
 * (the source's VM is gone once the destination runs), so its destination keeps the ID
 * that came with the RAM, as QEMU does and as the spec asks: vmgenid_continue(). The load flow must
 * restore devices after the vCPUs' LAPICs and the irqchip, as Firecracker does, so the edge lands
 * in the restored interrupt controllers and the guest takes it when its vCPUs run. */
#ifndef VESSEL_VMM_DEVICES_VMGENID_H
#define VESSEL_VMM_DEVICES_VMGENID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "vmm/device.h"
#include "vmm/devices/irq.h"
#include "vmm/memory.h"

#define VMGENID_SIZE 16

struct vmgenid;

/* A device over mem with its ID at gpa (8-byte aligned, within one page, in RAM); writes a
 * first random ID there if first_id (a VM being booted; a VM built to be restored has its
 * ID in the RAM it was given, and its restore decides). irq is the GED's line (an edge:
 * raised, then lowered). */
struct vmgenid *vmgenid_new(struct guest_mem *mem, uint64_t gpa, struct irq_line irq, bool first_id,
			    vs_err_t *err);
void vmgenid_free(struct vmgenid *g);
uint64_t vmgenid_addr(const struct vmgenid *g);

/* A snapshot's part (device.h's save/restore; state is a struct vmgenid *): the address.
 * Restore refuses another address than this device's (the guest has mapped the one its
 * DSDT gave), then writes a fresh ID and raises the notification. */
int vmgenid_save(void *state, void **blob, size_t *len, vs_err_t *err);
int vmgenid_restore(void *state, const void *blob, size_t len, vs_err_t *err);

/* The next restore continues this VM (a live migration's destination): the ID the RAM
 * holds stays and no notification is raised; the address is still checked. */
void vmgenid_continue(struct vmgenid *g);

/* Every VM has one, at LAYOUT_VMGENID, notifying through GED_GSI. */
extern const struct device_kind vmgenid_kind;

#endif
