/* process.capabilities of config.json, applied in the container init with the raw
 * capget/capset/prctl syscalls.
 *
 * Order in the container init:
 *   caps_prepare -> setgroups/setgid/setuid -> caps_finish -> execve
 * caps_prepare must run while the init is still root with CAP_SETPCAP effective (it drops
 * the bounding set); caps_finish must run after the uid switch. */
#ifndef VESSEL_OCI_CAPS_H
#define VESSEL_OCI_CAPS_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "base/error.h"

struct caps_spec {
	bool present; /* process.capabilities given at all */
	uint64_t bounding, effective, inheritable, permitted, ambient;
};

/* capabilities may be NULL (then present=false). Names like "CAP_NET_ADMIN"; an unknown
 * name is an error naming the field ("process.capabilities.bounding[3]: unknown capability
 * `CAP_FOO`") unless it is a real capability newer than this kernel (cap number >
 * /proc/sys/kernel/cap_last_cap), which is skipped with a debug log like runc. Sets the
 * kernel would refuse are refused here with a clear error: effective must be a subset of
 * permitted, inheritable of bounding; an ambient cap not in both permitted and inheritable
 * cannot be raised and is dropped with a warning (runc and crun also go on). */
int caps_parse(json_t *capabilities, const char *path, struct caps_spec *out, vs_err_t *err);

/* In the container init, still as root before switching uid/gid: drops every capability
 * not in the bounding set (PR_CAPBSET_DROP) and sets PR_SET_KEEPCAPS so the permitted set
 * survives setuid. Does nothing when !c->present (the init keeps what it has, like runc). */
int caps_prepare(const struct caps_spec *c, vs_err_t *err);

/* After setgroups/setgid/setuid: clears KEEPCAPS, sets effective/permitted/inheritable with
 * capset(2) (v3), then raises each ambient cap (PR_CAP_AMBIENT_RAISE). Only syscalls. */
int caps_finish(const struct caps_spec *c, vs_err_t *err);

/* For `vessel features` and `vessel spec`: every capability name this build knows, and the
 * default set runc's `spec` uses (AUDIT_WRITE, KILL, NET_BIND_SERVICE). */
json_t *caps_all_names_json(void);
json_t *caps_default_names_json(void);

/* Name <-> number for the capabilities this build knows; -1 / NULL when unknown. */
int caps_from_name(const char *name);
const char *caps_name(int cap);

/* The highest capability the running kernel has (/proc/sys/kernel/cap_last_cap, read
 * once; the build's CAP_LAST_CAP when /proc cannot be read). */
int caps_last_cap(void);
/* Tests only: pretend the kernel's last capability is `last` (-1: read it again). */
void caps_set_last_cap(int last);

/* Raises cap into the effective set if it is in the permitted set but not effective
 * (*raised tells whether it did); caps_effective_lower undoes it. Only syscalls: used by
 * seccomp_install, which needs CAP_SYS_ADMIN effective without noNewPrivileges. */
int caps_effective_raise(int cap, bool *raised, vs_err_t *err);
int caps_effective_lower(int cap, vs_err_t *err);

#endif
