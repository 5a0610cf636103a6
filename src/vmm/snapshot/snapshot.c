/* A whole snapshot: create from a paused VM, open and restore into a fresh one (see
 * snapshot.h). */
#include "vmm/snapshot/snapshot.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "vmm/boot/cpu.h"
#include "vmm/device.h"
#include "vmm/snapshot/cpu_compat.h"
#include "vmm/snapshot/device_state.h"
#include "vmm/snapshot/kvm_state.h"
#include "vmm/snapshot/mem_file.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

static uint64_t *dirty_bitmap(const struct vm *vm, vs_err_t *err)
{
	uint64_t words = (guest_mem_npages(&vm->mem) + 63) / 64;
	uint64_t *b = calloc(words ? words : 1, sizeof(uint64_t));
	if (!b)
		vs_err(err, ENOMEM, "dirty page bitmap");
	return b;
}

/* The pages written since the last snapshot: KVM's log of the guest's writes ORed with the
 * VMM's own (device workers). Both logs are cleared by the take. */
static uint64_t *take_dirty(struct vm *vm, vs_err_t *err)
{
	uint64_t *b = dirty_bitmap(vm, err);
	if (!b)
		return NULL;
	if (vm_take_dirty_log(vm, b, err) < 0) {
		free(b);
		return NULL;
	}
	guest_mem_take_dirty(&vm->mem, b);
	return b;
}

/* A Diff that could not be written gives its pages back to the VMM's bitmap, so the next
 * Diff still holds everything since the last snapshot that was written. */
static void give_back(struct vm *vm, const uint64_t *b)
{
	uint64_t words = (guest_mem_npages(&vm->mem) + 63) / 64;
	if (!vm->mem.dirty)
		return;
	for (uint64_t i = 0; i < words; i++)
		if (b[i])
			atomic_fetch_or(&vm->mem.dirty[i], b[i]);
}

static int write_memory(struct vm *vm, enum snapshot_type type, const char *path, vs_err_t *err)
{
	bool tracking = vm->dirty_log;
	if (type == SNAPSHOT_DIFF && !tracking)
		return vs_err(
		    err, 0,
		    "snapshot_type Diff needs the VM's dirty pages tracked "
		    "(machine-config track_dirty_pages, or enable_diff_snapshots at load)");
	if (type == SNAPSHOT_FULL) {
		if (mem_file_write_full(&vm->mem, path, err) < 0)
			return -1;
		if (!tracking)
			return 0;
		/* the next Diff starts from this snapshot */
		uint64_t *b = take_dirty(vm, err);
		free(b);
		return b ? 0 : -1;
	}
	uint64_t *b = take_dirty(vm, err);
	if (!b)
		return -1;
	int rc = mem_file_write_diff(&vm->mem, b, path, err);
	if (rc < 0)
		give_back(vm, b);
	free(b);
	return rc;
}

/* The state file's sections, in a writer: the config, the VM's chips and clock, each
 * vCPU, each device. */
static int write_state(struct vm *vm, const char *config_json, struct snap_writer *w, vs_err_t *err)
{
	if (snap_writer_add(w, SNAP_CONFIG_SECTION, 0, config_json, strlen(config_json), err) < 0 ||
	    kvm_state_save_vm(vm, w, err) < 0)
		return -1;
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (kvm_state_save_vcpu(&vm->vcpus[i], w, err) < 0)
			return -1;
	return device_state_save(vm, w, err);
}

int snapshot_create(struct vm *vm, const char *config_json, enum snapshot_type type,
		    const char *state_path, const char *mem_path, vs_err_t *err)
{
	/* refuse a VM that can't be snapshotted before writing anything */
	if (device_check_snapshot(vm, err) < 0)
		return -1;
	struct snap_writer w = {0};
	int rc = -1;
	if (write_state(vm, config_json, &w, err) < 0)
		goto out;
	if (write_memory(vm, type, mem_path, err) < 0)
		goto out;
	rc = snap_writer_write_file(&w, state_path, err);
out:
	snap_writer_release(&w);
	return rc;
}

int snapshot_check(const struct vm *vm, vs_err_t *err)
{
	return device_check_snapshot(vm, err);
}

int snapshot_save_state(struct vm *vm, const char *config_json, uint8_t **out, size_t *len,
			vs_err_t *err)
{
	if (device_check_snapshot(vm, err) < 0)
		return -1;
	struct snap_writer w = {0};
	int rc = -1;
	if (write_state(vm, config_json, &w, err) == 0)
		rc = snap_writer_finish(&w, out, len, err);
	snap_writer_release(&w);
	return rc;
}

int snapshot_merge_memory(const char *base, const char *diff, vs_err_t *err)
{
	return mem_file_merge(base, diff, err);
}

/* The config section of a parsed state file, as JSON; what names the file in errors. */
static int open_config(struct snapshot *s, const char *what, vs_err_t *err)
{
	const struct snap_section *c = snap_find(&s->file, SNAP_CONFIG_SECTION, 0);
	if (!c)
		return vs_err(err, 0, "%s has no config section", what);
	if (c->len > SNAP_CONFIG_MAX)
		return vs_err(err, 0, "%s: config section of %zu bytes", what, c->len);
	json_error_t je;
	s->config = json_loadb((const char *)c->data, c->len, JSON_REJECT_DUPLICATES, &je);
	if (!s->config || !json_is_object(s->config))
		return vs_err(err, 0, "%s: config section is not a JSON object (%s)", what,
			      s->config ? "another JSON value" : je.text);
	/* every vCPU's registers are checked by KVM as they are set; what can be known now
	 * (the count of devices) is checked by the restore before it touches a device */
	return 0;
}

int snapshot_open(const char *state_path, struct snapshot *s, vs_err_t *err)
{
	*s = (struct snapshot){0};
	if (snap_read_file(state_path, &s->file, err) < 0)
		return -1; /* it names the file */
	char what[4200];
	snprintf(what, sizeof(what), "state file `%s`", state_path);
	if (open_config(s, what, err) < 0) {
		snapshot_close(s);
		return -1;
	}
	return 0;
}

int snapshot_open_bytes(const void *buf, size_t len, struct snapshot *s, vs_err_t *err)
{
	*s = (struct snapshot){0};
	if (snap_parse(buf, len, &s->file, err) < 0 || open_config(s, "state", err) < 0) {
		snapshot_close(s);
		return -1;
	}
	return 0;
}

void snapshot_close(struct snapshot *s)
{
	json_decref(s->config);
	snap_file_release(&s->file);
	*s = (struct snapshot){0};
}

int snapshot_check_cpu(const struct snapshot *s, vs_err_t *err)
{
	unsigned ncpus = 0;
	while (snap_find(&s->file, "vcpu.cpuid", ncpus))
		ncpus++;
	if (ncpus == 0)
		return vs_err(err, 0, "state file has no vcpu.cpuid[0]");
	cleanup_close int kvm_fd = -1;
	if (vm_open_kvm(&kvm_fd, err) < 0)
		return -1;
	cleanup_free struct kvm_cpuid2 *sup = cpu_supported_cpuid(kvm_fd, err);
	if (!sup)
		return -1;
	size_t cap = sup->nent + 2;
	cleanup_free struct kvm_cpuid_entry2 *host = calloc(cap, sizeof(*host));
	if (!host)
		return vs_err(err, ENOMEM, "CPUID");
	const size_t esz = sizeof(struct kvm_cpuid_entry2);
	for (unsigned i = 0; i < ncpus; i++) {
		const struct snap_section *c = snap_find(&s->file, "vcpu.cpuid", i);
		if (c->len == 0 || c->len % esz)
			return vs_err(err, 0, "state file: vcpu.cpuid[%u] is %zu bytes, not a CPUID table",
				      i, c->len);
		/* what a cold boot of the same VM on this host would give vCPU i */
		int m = cpuid_build(sup->entries, sup->nent, i, ncpus, host, cap);
		if (m < 0)
			return vs_err(err, E2BIG, "CPUID of vCPU %u", i);
		/* the section's bytes may be unaligned for the struct: copied */
		cleanup_free struct kvm_cpuid_entry2 *saved = malloc(c->len);
		if (!saved)
			return vs_err(err, ENOMEM, "CPUID");
		memcpy(saved, c->data, c->len);
		bool model_differs;
		if (cpu_compat_check(saved, c->len / esz, host, (size_t)m, &model_differs, err) < 0)
			return vs_err_wrap(err, "vCPU %u", i);
		if (model_differs && i == 0) {
			char theirs[96], ours[96];
			cpu_compat_describe(saved, c->len / esz, theirs, sizeof(theirs));
			cpu_compat_describe(host, (size_t)m, ours, sizeof(ours));
			vs_warn("snapshot of a %s, loaded on a %s: every feature it used is here",
				theirs, ours);
		}
	}
	return 0;
}

int snapshot_restore(struct vm *vm, const struct snapshot *s, vs_err_t *err)
{
	/* the devices' workers wait while their queues are put back */
	devices_pause(vm);
	/* a section for a vCPU the config doesn't have is a file that lies about itself */
	if (snap_find(&s->file, "vcpu.regs", vm->ncpus))
		return vs_err(err, 0, "state file has more vCPUs than its config's %u", vm->ncpus);
	if (kvm_state_restore_vm(vm, &s->file, err) < 0)
		return -1;
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (kvm_state_restore_vcpu(&vm->vcpus[i], &s->file, err) < 0)
			return vs_err_wrap(err, "vCPU %u", i);
	/* Devices last, as Firecracker does: an interrupt a device raises in its restore
	 * (VMGenID's notification) lands in the irqchip and LAPICs already restored,
	 * instead of being overwritten by them. A failure here frees the whole VM. */
	return device_state_restore(vm, &s->file, err);
}
