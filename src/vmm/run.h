/* `vessel vm run` and `vessel vm dump-acpi`: wiring the parts into a machine. */
#ifndef VESSEL_VMM_RUN_H
#define VESSEL_VMM_RUN_H

#include "base/error.h"
#include "vmm/options.h"

/* Returns the VM's exit status, or -1 with err (vessel error, status 1). */
int vm_run(const struct vm_options *o, vs_err_t *err);

int vm_dump_acpi(unsigned ncpus, const char *dir, vs_err_t *err);

#endif
