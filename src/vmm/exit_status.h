/* Exit statuses of `vessel vm run` (the contract with tests and users). */
#ifndef VESSEL_VMM_EXIT_STATUS_H
#define VESSEL_VMM_EXIT_STATUS_H

enum vm_exit_status {
	VM_EXIT_POWEROFF = 0,	  /* ACPI S5 through the FADT sleep control register */
	VM_EXIT_ERROR = 1,	  /* vessel error: bad input, host failure */
	VM_EXIT_USAGE = 2,	  /* bad command line */
	VM_EXIT_RESET = 3,	  /* i8042 0xFE or the FADT reset register */
	VM_EXIT_TRIPLE_FAULT = 4, /* KVM_EXIT_SHUTDOWN */
	VM_EXIT_INTERNAL = 5,	  /* KVM internal error or an exit vessel cannot handle */
};

/* How a device ends the machine (reset, poweroff) without knowing about the VM. */
struct machine_ctl {
	void (*stop)(void *ctx, int status, const char *why);
	void *ctx;
};

static inline void machine_stop(const struct machine_ctl *m, int status, const char *why)
{
	if (m->stop)
		m->stop(m->ctx, status, why);
}

#endif
