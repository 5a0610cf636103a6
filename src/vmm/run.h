/* `vessel vm run` and `vessel vm dump-acpi`: wiring the parts into a machine. */
#ifndef VESSEL_VMM_RUN_H
#define VESSEL_VMM_RUN_H

#include "base/error.h"
#include "vmm/options.h"

/* Returns the VM's exit status, or -1 with err (vessel error, status 1). */
int vm_run(const struct vm_options *o, vs_err_t *err);

/* The tables a VM with ncpus vCPUs and nvirtio virtio devices gets (the devices' windows
 * and IRQs are allocated in order, so only their number matters). */
int vm_dump_acpi(unsigned ncpus, unsigned nvirtio, const char *dir, vs_err_t *err);

#endif
