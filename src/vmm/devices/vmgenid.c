#include "vmm/devices/vmgenid.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/log.h"
#include "vmm/layout.h"
#include "vmm/vm.h"

struct vmgenid {
	struct guest_mem *mem;
	uint64_t gpa;
	struct irq_line irq;
	bool keep_next; /* vmgenid_continue: the next restore is a migration's */
};

/* The blob: format version, zero, the address. A later format is refused, not misread. */
#define VMGENID_SNAP_VERSION 1
struct vmgenid_blob {
	uint32_t version;
	uint32_t reserved;
	uint64_t gpa;
};

static int write_fresh_id(struct vmgenid *g, vs_err_t *err)
{
	uint8_t id[VMGENID_SIZE];
	/* 16 bytes from an initialised pool are never short or interrupted */
	if (getrandom(id, sizeof(id), 0) != (ssize_t)sizeof(id))
		return vs_err(err, errno, "VM generation ID: getrandom");
	uint8_t *dst = guest_mem_ptr(g->mem, g->gpa, VMGENID_SIZE);
	if (!dst)
		return vs_err(err, 0, "VM generation ID: 0x%llx is not in guest RAM",
			      (unsigned long long)g->gpa);
	memcpy(dst, id, sizeof(id));
	/* not a secret (the guest reads it; Linux credits it no entropy), and the tests
	 * compare it with what the guest reads */
	char hex[2 * VMGENID_SIZE + 1];
	for (size_t i = 0; i < sizeof(id); i++)
		snprintf(hex + 2 * i, 3, "%02x", id[i]);
	vs_debug("vmgenid: generation ID %s at 0x%llx", hex, (unsigned long long)g->gpa);
	/* a diff snapshot must carry the page: KVM's dirty log sees only the guest's writes */
	guest_mem_mark_dirty(g->mem, g->gpa, VMGENID_SIZE);
	return 0;
}

struct vmgenid *vmgenid_new(struct guest_mem *mem, uint64_t gpa, struct irq_line irq, bool first_id,
			    vs_err_t *err)
{
	/* the spec's terms: 8-byte aligned, and not across a page (the guest maps it whole) */
	if (gpa % 8 || gpa / 4096 != (gpa + VMGENID_SIZE - 1) / 4096) {
		vs_err(err, 0, "VM generation ID at 0x%llx: not 8-byte aligned within one page",
		       (unsigned long long)gpa);
		return NULL;
	}
	struct vmgenid *g = calloc(1, sizeof(*g));
	if (!g) {
		vs_err(err, ENOMEM, "VM generation ID");
		return NULL;
	}
	*g = (struct vmgenid){.mem = mem, .gpa = gpa, .irq = irq};
	if (first_id && write_fresh_id(g, err) < 0) {
		free(g);
		return NULL;
	}
	return g;
}

void vmgenid_free(struct vmgenid *g)
{
	free(g);
}

void vmgenid_continue(struct vmgenid *g)
{
	g->keep_next = true;
}

uint64_t vmgenid_addr(const struct vmgenid *g)
{
	return g->gpa;
}

int vmgenid_save(void *state, void **blob, size_t *len, vs_err_t *err)
{
	const struct vmgenid *g = state;
	struct vmgenid_blob *b = calloc(1, sizeof(*b));
	if (!b)
		return vs_err(err, ENOMEM, "vmgenid");
	*b = (struct vmgenid_blob){VMGENID_SNAP_VERSION, 0, g->gpa};
	*blob = b;
	*len = sizeof(*b);
	return 0;
}

int vmgenid_restore(void *state, const void *blob, size_t len, vs_err_t *err)
{
	struct vmgenid *g = state;
	struct vmgenid_blob b;
	if (len != sizeof(b))
		return vs_err(err, 0, "vmgenid: state of %zu bytes (expected %zu)", len, sizeof(b));
	memcpy(&b, blob, sizeof(b));
	if (b.version != VMGENID_SNAP_VERSION)
		return vs_err(err, 0, "vmgenid: format version %u (this vessel reads %u)",
			      b.version, VMGENID_SNAP_VERSION);
	if (b.reserved != 0)
		return vs_err(err, 0, "vmgenid: reserved field is %u, not 0", b.reserved);
	if (b.gpa != g->gpa)
		return vs_err(err, 0,
			      "vmgenid: the snapshot's ID is at 0x%llx, this vessel places it at "
			      "0x%llx",
			      (unsigned long long)b.gpa, (unsigned long long)g->gpa);
	bool keep = g->keep_next;
	g->keep_next = false;
	if (keep)
		return 0;
	if (write_fresh_id(g, err) < 0)
		return -1;
	/* an edge: the GED's interrupt is edge-triggered (acpi.c), so one pulse is one _EVT */
	irq_line_set(&g->irq, 1);
	irq_line_set(&g->irq, 0);
	return 0;
}

static void *vmgenid_create(struct vm *vm, const void *config, vs_err_t *err)
{
	(void)config;
	/* a local migration's destination is built while the source runs on the same RAM */
	return vmgenid_new(&vm->mem, LAYOUT_VMGENID, (struct irq_line){vm_irq_line, vm, GED_GSI},
			   !vm->ram_given, err);
}

static void vmgenid_destroy(void *g)
{
	vmgenid_free(g);
}

const struct device_kind vmgenid_kind = {
    .name = "vmgenid",
    .builtin = true,
    .create = vmgenid_create,
    .destroy = vmgenid_destroy,
    .save = vmgenid_save,
    .restore = vmgenid_restore,
};
