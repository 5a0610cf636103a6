/* The VMs this host runs, and the overcommit policy over them.
 *
 * Each running VMM keeps one record, `<dir>/<pid>.json` (pid + start time, id, vCPUs,
 * memory, balloon, API socket), written when its VM is built and removed when it is freed.
 * A VMM that died leaves its record behind: readers tell it by the pid's start time and
 * drop it, so nothing depends on a clean exit. Before a VM is built, the VMM counts what
 * the live records commit and refuses a VM that would push the host past the ratios
 * (`--overcommit cpu=16,mem=1.5`: OpenStack's defaults) of its online CPUs and RAM. The
 * count, the check and the record are made under one lock, so two VMMs starting at once
 * can't both take the last room. */
#ifndef VESSEL_VMM_INVENTORY_H
#define VESSEL_VMM_INVENTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "base/error.h"

#define VM_RECORD_ID_MAX 64

struct vm_record {
	pid_t pid;
	uint64_t start_time;
	char id[VM_RECORD_ID_MAX + 1]; /* "" when the VM has none */
	unsigned vcpus;
	uint64_t memory;  /* bytes */
	uint64_t balloon; /* bytes the balloon asks the guest for; 0: none */
	char *api_sock;	  /* NULL without one */
};

struct overcommit {
	bool off;
	double cpu, mem; /* committed vCPUs per online CPU, committed guest RAM per byte of RAM */
};

/* `--max-machine VCPUS,SIZE`: the largest VM this VMM may build. The jailer counts a jailed
 * VMM at this size and passes it on, since nothing on the host sees the machine an API
 * client gives the VMM later (docs/jail.md). */
struct machine_max {
	bool set;
	unsigned vcpus;
	uint64_t memory; /* bytes */
};

/* The host a check is made against. */
struct host_capacity {
	unsigned cpus;
	uint64_t memory;
};

/* ---- the policy (overcommit.c): no I/O ---- */

void overcommit_defaults(struct overcommit *o);
/* "cpu=R,mem=R" (either may be left out: it keeps its value) or "off". */
int overcommit_parse(const char *spec, struct overcommit *o, vs_err_t *err);
/* 0 when a VM of vcpus and memory fits beside the running ones; else -1 with err saying
 * what is committed, what the limit is and what is free. */
int overcommit_check(const struct overcommit *o, const struct host_capacity *host,
		     const struct vm_record *running, size_t n, unsigned vcpus, uint64_t memory,
		     vs_err_t *err);

/* "VCPUS,SIZE" (2,512M) into m. */
int machine_max_parse(const char *spec, struct machine_max *m, vs_err_t *err);
/* 0 when a VM of vcpus and memory is within m (or m is not set); else -1 with err. */
int machine_max_check(const struct machine_max *m, unsigned vcpus, uint64_t memory,
		      vs_err_t *err);

/* ---- this process's record and the others' (record.c) ---- */

/* `vessel vm --state-dir DIR`; default /run/vessel-vm (root) or
 * $XDG_RUNTIME_DIR/vessel-vm. */
void inventory_set_dir(const char *dir);
const char *inventory_dir(void);
/* Takes `--overcommit SPEC`, `--max-machine VCPUS,SIZE` and `--counted-on-host` out of argv
 * (up to `--`), for `vm run` and `vm api`. The last is the jailer's (docs/jail.md): it
 * counted and recorded this VMM on the host at --max-machine, so admission only checks
 * that size and looks for no state directory. */
int inventory_setup(int *argc, char **argv, vs_err_t *err);
/* What --max-machine said (set false without one). */
const struct machine_max *inventory_max_machine(void);
/* Who this VMM is, for its record (both borrowed, may be NULL). */
void inventory_identify(const char *id, const char *api_sock);
/* Before a VM of vcpus and memory is built: the check, then this process's record. A
 * state directory that can't be made (a jail, a user without XDG_RUNTIME_DIR) is warned
 * about once: that VMM is neither counted nor checked. */
int inventory_admit(unsigned vcpus, uint64_t memory, vs_err_t *err);
/* The balloon's target changed: the record says so. */
void inventory_set_balloon(uint64_t bytes);
/* This process's VM is gone: its record too (no-op without one). */
void inventory_leave(void);
/* This process's record now names pid, which runs its VM (the jailer's child, which
 * execs the VMM); its start time is read through proc_fd (a /proc opened earlier). */
int inventory_move(int proc_fd, pid_t pid, vs_err_t *err);

/* The live records, stale ones removed on the way; free with inventory_free. */
int inventory_read(struct vm_record **out, size_t *n, vs_err_t *err);
void inventory_free(struct vm_record *r, size_t n);

/* ---- `vessel vm list` (list.c) ---- */

int inventory_list_main(int argc, char **argv, vs_err_t *err);

#endif
