/* The controller: owns the main thread's event loop (signals, the console, the VM's stop,
 * the API socket) and what is done to the VM: build and start it, pause and resume it,
 * stop it (snapshots are the next step, issue 9 §3). */
#ifndef VESSEL_VMM_CONTROLLER_H
#define VESSEL_VMM_CONTROLLER_H

#include <jansson.h>

#include "base/error.h"

struct vm;

/* Blocks SIGINT/SIGTERM/SIGHUP in the calling thread, which every thread made later
 * inherits: they wait, pending, for the loop's signalfd. Call it before building the VM,
 * so a signal that comes while the VM is being made stops it once it runs, instead of
 * killing vessel half-way (a failed build simply exits with its error). */
int controller_claim_signals(vs_err_t *err);

/* Starts the vCPUs and runs the loop until the VM stops; returns its exit status, or -1
 * with err. SIGINT/SIGTERM/SIGHUP stop the VM with 128 + signo. The vCPU threads are
 * joined before it returns. */
int controller_run(struct vm *vm, vs_err_t *err);

/* `vessel vm api`: Firecracker's API on sock (src/vmm/api). The VM is built when the API's
 * InstanceStart comes (or at once from config_file); the loop runs until that VM stops
 * (its exit status) or, before one runs, until a stop signal (128 + signo). -1 with err
 * when the socket can't be made or the config file can't boot. */
struct controller_api {
	const char *sock, *config_file, *id;
	/* a VM restored elsewhere (a migration's receiver) that runs at once, and its
	 * description (API's document); the controller frees the VM */
	struct vm *vm;
	json_t *doc;
};
int controller_serve(const struct controller_api *o, vs_err_t *err);

#endif
