/* linux.seccomp of config.json: parse and validate, compile to BPF with libseccomp in the
 * runtime process, install with seccomp(2) in the container init.
 *
 * Ordering in the container init. The filter goes in with seccomp(2) directly, so the
 * kernel's rule applies: without PR_SET_NO_NEW_PRIVS the caller needs CAP_SYS_ADMIN in its
 * effective set. Orders that work:
 *   noNewPrivileges:  ... caps_finish -> prctl(PR_SET_NO_NEW_PRIVS) -> seccomp_install
 *   without it (runc's order): seccomp_install while still root -> caps_prepare ->
 *                     setgroups/setgid/setuid -> caps_finish
 *   without it, later: caps_prepare -> setuid -> seccomp_install -> caps_finish; setuid
 *                     empties the effective set, so seccomp_install raises CAP_SYS_ADMIN
 *                     from the permitted set (KEEPCAPS kept it) for its one call and
 *                     lowers it again.
 * After caps_finish has dropped CAP_SYS_ADMIN, only noNewPrivileges works; the error says
 * so. The filter is exactly the profile: every syscall the init makes after installing it
 * (prctl, setresuid, capset, write/read on the sync fds, execve, ...) must be allowed by
 * the profile, as with runc; Docker's and podman's default profiles allow them all. */
#ifndef VESSEL_OCI_SECCOMP_H
#define VESSEL_OCI_SECCOMP_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "base/error.h"

struct seccomp_spec;

/* seccomp may be NULL (no filter: *out = NULL, return 0). path is "linux.seccomp". Every
 * field is validated and named on error. An unknown syscall name is skipped with a debug
 * log (profiles list syscalls newer than the kernel/libseccomp); an unknown action, arch,
 * flag or op is an error. SCMP_ACT_NOTIFY needs listenerPath (and the reverse). */
int seccomp_spec_parse(json_t *seccomp, const char *path, struct seccomp_spec **out, vs_err_t *err);
void seccomp_spec_free(struct seccomp_spec *s);

/* listenerPath and listenerMetadata ("" when absent), or NULL without a listener. */
const char *seccomp_listener_path(const struct seccomp_spec *s);
const char *seccomp_listener_metadata(const struct seccomp_spec *s);

/* Number of syscall rules the spec holds after skipping unknown names (for logs/tests). */
size_t seccomp_spec_rule_count(const struct seccomp_spec *s);

/* Compiles to a BPF program in the runtime process, before any fork, so the container's
 * init only has to install it (cheap, and no libseccomp work after pivot_root). */
struct seccomp_prog;
int seccomp_compile(const struct seccomp_spec *s, struct seccomp_prog **out, vs_err_t *err);
void seccomp_prog_free(struct seccomp_prog *p);

/* Number of BPF instructions in the program. */
size_t seccomp_prog_len(const struct seccomp_prog *p);

/* Installs the program in the calling thread (the container init, right before execve)
 * with the spec's flags. No allocation on success, only syscalls (prctl, capget/capset,
 * seccomp). See the ordering note at the top of this file. */
int seccomp_install(const struct seccomp_prog *p, int *listener, vs_err_t *err);
/* Does installing it make a notify listener fd (*listener of seccomp_install)? */
bool seccomp_prog_notifies(const struct seccomp_prog *p);

/* For `vessel features`: the runtime-spec features.md "linux.seccomp" object (enabled,
 * actions, operators, archs, knownFlags, supportedFlags probed on this kernel). */
json_t *seccomp_features_json(void);

#endif
