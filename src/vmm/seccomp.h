/* Per-thread seccomp allow-lists for the VMM, as Firecracker installs them: each thread
 * loads its own filter before it touches anything the guest wrote. The API is served on
 * the main thread's loop (controller.c), so the main thread's list covers it.
 * docs/jail.md lists the calls and says how they were observed. */
#ifndef VESSEL_VMM_SECCOMP_H
#define VESSEL_VMM_SECCOMP_H

#include <seccomp.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"

/* MIGRATION: a migration's sender (src/vmm/migration/send.c), the one thread that talks to
 * another host; started from the main thread, so its list is a subset of main's. */
enum vmm_thread {
	VMM_THREAD_MAIN,
	VMM_THREAD_VCPU,
	VMM_THREAD_WORKER,
	VMM_THREAD_MIGRATION,
	VMM_NTHREADS
};

/* The exit status of a VMM one of whose threads made a call outside its list. */
#define VMM_EXIT_SECCOMP 6

/* One allowed call: the syscall, when all of its argument conditions hold (none: always).
 * A call is allowed when any of its thread's rules for it matches. */
#define VMM_SECCOMP_MAX_ARGS 6
struct vmm_seccomp_rule {
	int nr;
	unsigned nargs;
	struct scmp_arg_cmp args[VMM_SECCOMP_MAX_ARGS];
};

/* The rules per thread kind. */
struct vmm_seccomp_lists {
	struct vmm_seccomp_rule *rules[VMM_NTHREADS];
	size_t n[VMM_NTHREADS];
};

/* Parses a filter file: one JSON object {"main": [...], "vcpu": [...], "worker": [...]}
 * with those keys present; each entry a syscall name of this architecture, or an object
 * {"syscall": NAME, "args": [{"index": I, "type": "dword"|"qword", "op": OP, "val": V}]}
 * (Firecracker's seccompiler rule). "migration" is optional (absent: the built-in list,
 * which main's must then allow). */
int vmm_seccomp_parse(const char *text, size_t len, struct vmm_seccomp_lists *out, vs_err_t *err);
void vmm_seccomp_lists_free(struct vmm_seccomp_lists *l);

/* Takes the seccomp options out of a `vm run` / `vm api` argv (before any `--`):
 * --no-seccomp, --seccomp-filter FILE, and the test-only --test-seccomp-violation
 * THREAD[:ioctl|:socket|:exec] (that thread makes a forbidden call, or an allowed call
 * with forbidden arguments, once its filter is on). Loads the file and claims SIGSYS for
 * the report. */
int vmm_seccomp_setup(int *argc, char **argv, vs_err_t *err);
/* Loads the calling thread's filter (nothing with --no-seccomp). */
int vmm_seccomp_apply(enum vmm_thread kind, vs_err_t *err);
/* For threads that cannot return an error: applies or stops the process with a report. */
void vmm_seccomp_apply_or_die(enum vmm_thread kind);

#endif
