/* The builder: a VM config -> a VM ready to run (KVM VM, guest RAM, vCPUs, every device,
 * the kernel and its boot structures loaded). The controller then runs it. */
#ifndef VESSEL_VMM_BUILDER_H
#define VESSEL_VMM_BUILDER_H

#include "base/error.h"
#include "vmm/config.h"

struct vm;

/* NULL with err (what failed, on what) when the config or the host can't make the VM. */
struct vm *vm_build(const struct vm_config *c, vs_err_t *err);
/* A VM for a snapshot's load or a migration's destination: the same KVM VM, vCPUs and
 * devices as vm_build makes of c, with guest RAM mapped MAP_PRIVATE from mem_file, or
 * MAP_SHARED from the memfd mem_fd (a local migration; the caller keeps its fd), or new
 * (neither: NULL, -1); exactly c->memory bytes, and nothing loaded into it: the state is
 * restored over it next (snapshot/snapshot.h). */
struct vm *vm_build_restore(const struct vm_config *c, const char *mem_file, int mem_fd,
			    vs_err_t *err);
/* Frees a VM vm_build made: its devices, then KVM's part. */
void vm_free(struct vm *vm);

/* The tables a VM with ncpus vCPUs and nvirtio virtio devices gets (the devices' windows
 * and IRQs are allocated in order, so only their number matters). */
int vm_dump_acpi(unsigned ncpus, unsigned nvirtio, const char *dir, vs_err_t *err);

#endif
