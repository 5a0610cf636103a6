/* Capabilities with the raw syscalls rather than libcap: the container init needs five
 * calls (PR_CAPBSET_READ/DROP, PR_SET_KEEPCAPS, capset v3, PR_CAP_AMBIENT) that must not
 * allocate after fork, and the name table is 41 lines. libcap would add a shared library
 * to the runtime binary for that, and its cap_from_name() accepts forms ("cap_chown",
 * numbers) that runc's config.json does not. */
#include "oci/caps.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include "base/json.h"
#include "base/log.h"
#include "base/util.h"

/* The numbers are kernel ABI; the table ends where this build's knowledge ends. */
static const char *const cap_names[] = {
    [0] = "CAP_CHOWN",
    [1] = "CAP_DAC_OVERRIDE",
    [2] = "CAP_DAC_READ_SEARCH",
    [3] = "CAP_FOWNER",
    [4] = "CAP_FSETID",
    [5] = "CAP_KILL",
    [6] = "CAP_SETGID",
    [7] = "CAP_SETUID",
    [8] = "CAP_SETPCAP",
    [9] = "CAP_LINUX_IMMUTABLE",
    [10] = "CAP_NET_BIND_SERVICE",
    [11] = "CAP_NET_BROADCAST",
    [12] = "CAP_NET_ADMIN",
    [13] = "CAP_NET_RAW",
    [14] = "CAP_IPC_LOCK",
    [15] = "CAP_IPC_OWNER",
    [16] = "CAP_SYS_MODULE",
    [17] = "CAP_SYS_RAWIO",
    [18] = "CAP_SYS_CHROOT",
    [19] = "CAP_SYS_PTRACE",
    [20] = "CAP_SYS_PACCT",
    [21] = "CAP_SYS_ADMIN",
    [22] = "CAP_SYS_BOOT",
    [23] = "CAP_SYS_NICE",
    [24] = "CAP_SYS_RESOURCE",
    [25] = "CAP_SYS_TIME",
    [26] = "CAP_SYS_TTY_CONFIG",
    [27] = "CAP_MKNOD",
    [28] = "CAP_LEASE",
    [29] = "CAP_AUDIT_WRITE",
    [30] = "CAP_AUDIT_CONTROL",
    [31] = "CAP_SETFCAP",
    [32] = "CAP_MAC_OVERRIDE",
    [33] = "CAP_MAC_ADMIN",
    [34] = "CAP_SYSLOG",
    [35] = "CAP_WAKE_ALARM",
    [36] = "CAP_BLOCK_SUSPEND",
    [37] = "CAP_AUDIT_READ",
    [38] = "CAP_PERFMON",
    [39] = "CAP_BPF",
    [40] = "CAP_CHECKPOINT_RESTORE",
};
#define CAPS_KNOWN ((int)ARRAY_SIZE(cap_names))

_Static_assert(ARRAY_SIZE(cap_names) <= 64, "capability sets are 64-bit masks here");

/* What runc's `spec` puts in every set. */
static const char *const default_caps[] = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"};

int caps_from_name(const char *name)
{
	for (int i = 0; i < CAPS_KNOWN; i++)
		if (strcmp(cap_names[i], name) == 0)
			return i;
	return -1;
}

const char *caps_name(int cap)
{
	return cap >= 0 && cap < CAPS_KNOWN ? cap_names[cap] : NULL;
}

static int last = -1;

void caps_set_last_cap(int cap)
{
	last = cap;
}

int caps_last_cap(void)
{
	if (last >= 0)
		return last;
	char buf[16] = {0};
	int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	long v = n > 0 ? strtol(buf, NULL, 10) : -1;
	if (v <= 0 || v > 63) {
		vs_debug("cannot read /proc/sys/kernel/cap_last_cap, assuming %d", CAP_LAST_CAP);
		v = CAP_LAST_CAP;
	}
	last = (int)v;
	return last;
}

static int parse_set(json_t *caps, const char *path, const char *key, uint64_t *out, vs_err_t *err)
{
	json_t *arr = NULL;
	int rc = vjson_array(caps, path, key, &arr, err);
	if (rc <= 0)
		return rc;
	int last = caps_last_cap();
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
	{
		if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
			return vs_err(err, 0, "%s.%s[%zu]: must be a string", path, key, i);
		const char *name = json_string_value(v);
		int cap = caps_from_name(name);
		if (cap < 0)
			return vs_err(err, 0, "%s.%s[%zu]: unknown capability `%.64s`", path, key,
				      i, name);
		if (cap > last) {
			vs_debug(
			    "%s.%s[%zu]: %s is newer than this kernel (cap_last_cap %d), skipped",
			    path, key, i, name, last);
			continue;
		}
		*out |= 1ULL << cap;
	}
	return 1;
}

/* The first capability in mask, for error messages. */
static const char *first_cap(uint64_t mask)
{
	return mask ? caps_name(__builtin_ctzll(mask)) : "";
}

int caps_parse(json_t *capabilities, const char *path, struct caps_spec *out, vs_err_t *err)
{
	*out = (struct caps_spec){0};
	if (!capabilities || json_is_null(capabilities))
		return 0;
	if (!json_is_object(capabilities))
		return vs_err(err, 0, "%s: must be an object", path);

	struct caps_spec c = {.present = true};
	if (parse_set(capabilities, path, "bounding", &c.bounding, err) < 0 ||
	    parse_set(capabilities, path, "effective", &c.effective, err) < 0 ||
	    parse_set(capabilities, path, "inheritable", &c.inheritable, err) < 0 ||
	    parse_set(capabilities, path, "permitted", &c.permitted, err) < 0 ||
	    parse_set(capabilities, path, "ambient", &c.ambient, err) < 0)
		return -1;

	/* capset(2) refuses these; saying so here names the field instead of the init
	 * failing with a bare EPERM after fork. */
	if (c.effective & ~c.permitted)
		return vs_err(err, 0, "%s.effective: %s is not in %s.permitted", path,
			      first_cap(c.effective & ~c.permitted), path);
	if (c.inheritable & ~c.bounding)
		return vs_err(err, 0, "%s.inheritable: %s is not in %s.bounding", path,
			      first_cap(c.inheritable & ~c.bounding), path);
	uint64_t unraisable = c.ambient & ~(c.permitted & c.inheritable);
	if (unraisable) {
		for (int cap = 0; cap < 64; cap++)
			if (unraisable & (1ULL << cap))
				vs_warn("%s.ambient: %s is not in both permitted and inheritable, "
					"so it cannot be ambient; ignored",
					path, caps_name(cap));
		c.ambient &= ~unraisable;
	}
	*out = c;
	return 0;
}

int caps_prepare(const struct caps_spec *c, vs_err_t *err)
{
	if (!c->present)
		return 0;
	/* PR_CAPBSET_READ fails with EINVAL past the kernel's last capability: that bounds
	 * the loop without reading /proc (which may be the container's by now). */
	for (int cap = 0; cap < 64; cap++) {
		int has = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
		if (has < 0 && errno == EINVAL)
			break;
		if (has < 0)
			return vs_err(err, errno, "read bounding capability %d", cap);
		if (!has || (c->bounding & (1ULL << cap)))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
			return vs_err(err, errno, "drop %s from the bounding set",
				      caps_name(cap) ? caps_name(cap) : "capability");
	}
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return vs_err(err, errno, "prctl(PR_SET_KEEPCAPS)");
	return 0;
}

static int cap_get(struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	return (int)syscall(SYS_capget, &hdr, data);
}

static int cap_set(uint64_t effective, uint64_t permitted, uint64_t inheritable)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2] = {
	    {(uint32_t)effective, (uint32_t)permitted, (uint32_t)inheritable},
	    {(uint32_t)(effective >> 32), (uint32_t)(permitted >> 32),
	     (uint32_t)(inheritable >> 32)},
	};
	return (int)syscall(SYS_capset, &hdr, data);
}

static uint64_t join(uint32_t lo, uint32_t hi)
{
	return (uint64_t)hi << 32 | lo;
}

int caps_finish(const struct caps_spec *c, vs_err_t *err)
{
	if (!c->present)
		return 0;
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return vs_err(err, errno, "prctl(PR_SET_KEEPCAPS, 0)");
	if (cap_set(c->effective, c->permitted, c->inheritable) < 0) {
		int saved = errno;
		struct __user_cap_data_struct cur[2];
		if (saved == EPERM && cap_get(cur) == 0) {
			uint64_t missing = c->permitted & ~join(cur[0].permitted, cur[1].permitted);
			if (missing)
				return vs_err(err, saved, "capset: %s is not held by the runtime",
					      first_cap(missing));
		}
		return vs_err(err, saved, "capset");
	}
	/* Start from an empty ambient set whatever the runtime had; a kernel without
	 * ambient capabilities (< 4.3) is fine as long as none are asked for. */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 &&
	    (errno != EINVAL || c->ambient))
		return vs_err(err, errno, "clear the ambient capabilities");
	for (int cap = 0; cap < 64; cap++) {
		if (!(c->ambient & (1ULL << cap)))
			continue;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
			return vs_err(err, errno, "raise ambient capability %s", caps_name(cap));
	}
	return 0;
}

int caps_effective_raise(int cap, bool *raised, vs_err_t *err)
{
	struct __user_cap_data_struct d[2];
	*raised = false;
	if (cap < 0 || cap > 63)
		return vs_err(err, EINVAL, "capability %d", cap);
	if (cap_get(d) < 0)
		return vs_err(err, errno, "capget");
	uint64_t bit = 1ULL << cap;
	uint64_t eff = join(d[0].effective, d[1].effective);
	uint64_t prm = join(d[0].permitted, d[1].permitted);
	uint64_t inh = join(d[0].inheritable, d[1].inheritable);
	if ((eff & bit) || !(prm & bit))
		return 0;
	if (cap_set(eff | bit, prm, inh) < 0)
		return vs_err(err, errno, "capset: raise %s", caps_name(cap));
	*raised = true;
	return 0;
}

int caps_effective_lower(int cap, vs_err_t *err)
{
	struct __user_cap_data_struct d[2];
	if (cap < 0 || cap > 63)
		return vs_err(err, EINVAL, "capability %d", cap);
	if (cap_get(d) < 0)
		return vs_err(err, errno, "capget");
	uint64_t eff = join(d[0].effective, d[1].effective) & ~(1ULL << cap);
	if (cap_set(eff, join(d[0].permitted, d[1].permitted),
		    join(d[0].inheritable, d[1].inheritable)) < 0)
		return vs_err(err, errno, "capset: lower %s", caps_name(cap));
	return 0;
}

static json_t *names_json(const char *const *names, size_t n)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n; i++)
		if (json_array_append_new(arr, json_string(names[i])) < 0) {
			json_decref(arr);
			return NULL;
		}
	return arr;
}

json_t *caps_all_names_json(void)
{
	return names_json(cap_names, ARRAY_SIZE(cap_names));
}

json_t *caps_default_names_json(void)
{
	return names_json(default_caps, ARRAY_SIZE(default_caps));
}
