/* The controller: owns the main thread's event loop while a VM runs (signals, the
 * console, the VM's stop, later the API socket) and what is done to a running VM
 * (start, stop; pause, resume and snapshot are the next steps, issue 9 §3). */
#ifndef VESSEL_VMM_CONTROLLER_H
#define VESSEL_VMM_CONTROLLER_H

#include "base/error.h"

struct vm;

/* Starts the vCPUs and runs the loop until the VM stops; returns its exit status, or -1
 * with err. SIGINT/SIGTERM/SIGHUP stop the VM with 128 + signo. The vCPU threads are
 * joined before it returns. */
int controller_run(struct vm *vm, vs_err_t *err);

#endif
