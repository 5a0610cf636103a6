/* One thread per vCPU in a KVM_RUN loop; exits go to the buses or end the VM. */
#ifndef VESSEL_VMM_VCPU_H
#define VESSEL_VMM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>

#include "base/error.h"

struct vm;

struct vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
};

/* KVM_CREATE_VCPU, the kvm_run mapping and cpu_init (CPUID, MSRs, FPU, LAPIC). */
int vcpu_create(struct vm *vm, unsigned id, vs_err_t *err);
void vcpu_destroy(struct vcpu *c, int run_size);

/* Call once in the main thread before any vCPU starts: the kick signal's handler. */
int vcpu_signals_init(vs_err_t *err);
int vcpu_start(struct vcpu *c, vs_err_t *err);
/* Makes a running KVM_RUN return (or the next one return at once). */
void vcpu_kick(struct vcpu *c);
void vcpu_join(struct vcpu *c);

/* Pause (PATCH /vm Paused): every started vCPU of vm leaves KVM_RUN (kicked: the
 * immediate_exit flag and the signal) and waits, parked, until vcpus_resume. Returns when
 * all are parked; -1 with err if one is not within 5 s (the VM then runs on). A VM that
 * stops meanwhile counts as paused: its vCPUs are leaving anyway. */
int vcpus_pause(struct vm *vm, vs_err_t *err);
void vcpus_resume(struct vm *vm);

/* The name of a KVM exit reason, for reports. */
const char *vcpu_exit_name(unsigned reason);

#endif
