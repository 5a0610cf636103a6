/* linux.seccomp: config.json -> validated rules -> BPF (libseccomp) -> seccomp(2).
 *
 * Parsing resolves every name (action, arch, syscall, operator) up front, so compiling is
 * a plain walk and an error always names the config field. The program is exported from
 * libseccomp as raw BPF and installed with seccomp(2) by hand: that keeps libseccomp out
 * of the container init and lets the spec's flags go straight to the kernel. */
#include "oci/seccomp.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>

#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "oci/caps.h"

/* seccomp_rule_add takes at most six comparisons, one per syscall argument; repeated
 * indexes become one rule each (see add_rules), so a rule's list may be longer. A bound
 * keeps a hostile config from costing unbounded memory and compile time. */
#define MAX_ARGS_PER_RULE 64

struct seccomp_entry {
	size_t index; /* position in syscalls[], for error messages */
	uint32_t action;
	int *nrs;
	char **names;
	size_t n_nrs;
	struct scmp_arg_cmp *args;
	size_t n_args;
	bool repeated_index; /* two comparisons on one argument: OR them, as runc does */
};

struct seccomp_spec {
	char *path;
	uint32_t default_action;
	uint32_t *archs;
	size_t n_archs;
	unsigned int flags;
	struct seccomp_entry *entries;
	size_t n_entries;
	char *listener_path, *listener_metadata;
};

struct seccomp_prog {
	unsigned int flags;
	unsigned short len;
	struct sock_filter insns[];
};

enum act_errno { ERRNO_NONE, ERRNO_TAKES };

static const struct action_name {
	const char *name;
	uint32_t action;
	enum act_errno errno_ret;
} actions[] = {
    {"SCMP_ACT_KILL", SCMP_ACT_KILL, ERRNO_NONE},
    {"SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS, ERRNO_NONE},
    {"SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD, ERRNO_NONE},
    {"SCMP_ACT_TRAP", SCMP_ACT_TRAP, ERRNO_NONE},
    {"SCMP_ACT_ERRNO", SCMP_ACT_ERRNO(0), ERRNO_TAKES},
    {"SCMP_ACT_TRACE", SCMP_ACT_TRACE(0), ERRNO_TAKES},
    {"SCMP_ACT_ALLOW", SCMP_ACT_ALLOW, ERRNO_NONE},
    {"SCMP_ACT_LOG", SCMP_ACT_LOG, ERRNO_NONE},
    {"SCMP_ACT_NOTIFY", SCMP_ACT_NOTIFY, ERRNO_NONE},
};

static const struct op_name {
	const char *name;
	enum scmp_compare op;
} ops[] = {
    {"SCMP_CMP_NE", SCMP_CMP_NE},
    {"SCMP_CMP_LT", SCMP_CMP_LT},
    {"SCMP_CMP_LE", SCMP_CMP_LE},
    {"SCMP_CMP_EQ", SCMP_CMP_EQ},
    {"SCMP_CMP_GE", SCMP_CMP_GE},
    {"SCMP_CMP_GT", SCMP_CMP_GT},
    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
};

/* The runtime spec's names; libseccomp knows each as the lower-case suffix. Those this
 * libseccomp lacks are refused by name rather than called unknown. */
static const char *const arch_names[] = {
    "SCMP_ARCH_X86",	 "SCMP_ARCH_X86_64",   "SCMP_ARCH_X32",		"SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS",     "SCMP_ARCH_MIPS64",	"SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",	 "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",	 "SCMP_ARCH_PPC64LE",  "SCMP_ARCH_S390",	"SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",	 "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64",	"SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",	 "SCMP_ARCH_SH",       "SCMP_ARCH_SHEB",
};

static const struct flag_name {
	const char *name;
	unsigned int flag;
} flags[] = {
    {"SECCOMP_FILTER_FLAG_TSYNC", SECCOMP_FILTER_FLAG_TSYNC},
    {"SECCOMP_FILTER_FLAG_LOG", SECCOMP_FILTER_FLAG_LOG},
    {"SECCOMP_FILTER_FLAG_SPEC_ALLOW", SECCOMP_FILTER_FLAG_SPEC_ALLOW},
    /* only means something with a notify listener (checked in seccomp_spec_parse) */
    {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV},
};

/* The most a filter can return as errno data (SECCOMP_RET_DATA); the kernel clamps values
 * above MAX_ERRNO (4095) itself. */
#define ERRNO_RET_MAX 0xffff

static uint32_t arch_token(const char *name)
{
	const char *prefix = "SCMP_ARCH_";
	if (!vs_str_has_prefix(name, prefix) || strlen(name) > 32)
		return 0;
	char lower[32];
	size_t i = 0;
	for (const char *p = name + strlen(prefix); *p; p++)
		lower[i++] = (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a') : *p;
	lower[i] = '\0';
	return seccomp_arch_resolve_name(lower);
}

static bool known_arch(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(arch_names); i++)
		if (strcmp(arch_names[i], name) == 0)
			return true;
	return false;
}

/* Reads an action name plus its errno field (errnoRet / defaultErrnoRet) at obj. */
static int parse_action(json_t *obj, const char *path, const char *key, const char *errno_key,
			uint32_t *out, vs_err_t *err)
{
	const char *name = NULL;
	int rc =
	    vjson_require(vjson_string(obj, path, key, &name, err), path, key, "an action", err);
	if (rc < 0)
		return -1;
	const struct action_name *a = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(actions); i++)
		if (strcmp(actions[i].name, name) == 0)
			a = &actions[i];
	if (!a)
		return vs_err(err, 0, "%s.%s: unknown action `%.64s`", path, key, name);

	int64_t errno_ret = EPERM;
	rc = vjson_int_range(obj, path, errno_key, 0, ERRNO_RET_MAX, &errno_ret, err);
	if (rc < 0)
		return -1;
	if (rc > 0 && a->errno_ret == ERRNO_NONE)
		return vs_err(err, 0,
			      "%s.%s: not allowed with %s (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE "
			      "return an errno)",
			      path, errno_key, name);
	*out = a->errno_ret == ERRNO_TAKES ? (a->action | (uint32_t)errno_ret) : a->action;
	return 0;
}

static int parse_archs(json_t *seccomp, struct seccomp_spec *s, vs_err_t *err)
{
	json_t *arr = NULL;
	int rc = vjson_array(seccomp, s->path, "architectures", &arr, err);
	if (rc <= 0)
		return rc;
	s->archs = calloc(json_array_size(arr) + 1, sizeof(*s->archs));
	if (!s->archs)
		return vs_err(err, ENOMEM, "%s.architectures", s->path);
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
	{
		const char *name = json_string_value(v);
		if (!name || strlen(name) != json_string_length(v))
			return vs_err(err, 0, "%s.architectures[%zu]: must be a string", s->path,
				      i);
		uint32_t token = arch_token(name);
		if (!token && known_arch(name))
			return vs_err(err, 0,
				      "%s.architectures[%zu]: %s is not supported by this "
				      "libseccomp (%u.%u.%u)",
				      s->path, i, name, seccomp_version()->major,
				      seccomp_version()->minor, seccomp_version()->micro);
		if (!token)
			return vs_err(err, 0, "%s.architectures[%zu]: unknown architecture `%.64s`",
				      s->path, i, name);
		s->archs[s->n_archs++] = token;
	}
	return 0;
}

static int parse_flags(json_t *seccomp, struct seccomp_spec *s, vs_err_t *err)
{
	json_t *arr = NULL;
	int rc = vjson_array(seccomp, s->path, "flags", &arr, err);
	if (rc <= 0)
		return rc;
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
	{
		const char *name = json_string_value(v);
		if (!name || strlen(name) != json_string_length(v))
			return vs_err(err, 0, "%s.flags[%zu]: must be a string", s->path, i);
		const struct flag_name *f = NULL;
		for (size_t k = 0; k < ARRAY_SIZE(flags); k++)
			if (strcmp(flags[k].name, name) == 0)
				f = &flags[k];
		if (!f)
			return vs_err(err, 0, "%s.flags[%zu]: unknown flag `%.64s`", s->path, i,
				      name);
		s->flags |= f->flag;
	}
	return 0;
}

static int parse_arg(json_t *arg, const char *path, struct scmp_arg_cmp *out, vs_err_t *err)
{
	if (!json_is_object(arg))
		return vs_err(err, 0, "%s: must be an object", path);
	int64_t index = 0;
	uint64_t value = 0, value_two = 0;
	const char *op = NULL;
	if (vjson_require(vjson_int_range(arg, path, "index", 0, 5, &index, err), path, "index",
			  "argument number 0-5", err) < 0 ||
	    vjson_require(vjson_uint64(arg, path, "value", &value, err), path, "value",
			  "a 64-bit value", err) < 0 ||
	    vjson_uint64(arg, path, "valueTwo", &value_two, err) < 0 ||
	    vjson_require(vjson_string(arg, path, "op", &op, err), path, "op", "an operator", err) <
		0)
		return -1;
	const struct op_name *o = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(ops); i++)
		if (strcmp(ops[i].name, op) == 0)
			o = &ops[i];
	if (!o)
		return vs_err(err, 0, "%s.op: unknown operator `%.64s`", path, op);
	/* For SCMP_CMP_MASKED_EQ `value` is the mask and `valueTwo` the expected result
	 * (runc's and libseccomp's order); other operators ignore valueTwo. */
	*out = (struct scmp_arg_cmp){
	    .arg = (unsigned int)index,
	    .op = o->op,
	    .datum_a = value,
	    .datum_b = o->op == SCMP_CMP_MASKED_EQ ? value_two : 0,
	};
	return 0;
}

static int parse_names(json_t *names, const char *path, struct seccomp_entry *e, vs_err_t *err)
{
	size_t n = json_array_size(names);
	e->nrs = calloc(n ? n : 1, sizeof(*e->nrs));
	e->names = calloc(n ? n : 1, sizeof(*e->names));
	if (!e->nrs || !e->names)
		return vs_err(err, ENOMEM, "%s", path);
	size_t i;
	json_t *v;
	json_array_foreach(names, i, v)
	{
		const char *name = json_string_value(v);
		if (!name || strlen(name) != json_string_length(v))
			return vs_err(err, 0, "%s.names[%zu]: must be a string", path, i);
		int nr = seccomp_syscall_resolve_name(name);
		if (nr == __NR_SCMP_ERROR) {
			vs_debug("%s.names[%zu]: syscall `%.64s` unknown to this libseccomp, "
				 "skipped",
				 path, i, name);
			continue;
		}
		e->names[e->n_nrs] = strdup(name);
		if (!e->names[e->n_nrs])
			return vs_err(err, ENOMEM, "%s", path);
		e->nrs[e->n_nrs++] = nr;
	}
	return 0;
}

static int parse_entry(json_t *sc, const char *path, size_t index, struct seccomp_entry *e,
		       vs_err_t *err)
{
	e->index = index;
	if (!json_is_object(sc))
		return vs_err(err, 0, "%s: must be an object", path);
	json_t *names = NULL;
	if (vjson_require(vjson_array(sc, path, "names", &names, err), path, "names",
			  "syscall names", err) < 0)
		return -1;
	if (json_array_size(names) == 0)
		return vs_err(err, 0, "%s.names: must not be empty", path);
	if (parse_action(sc, path, "action", "errnoRet", &e->action, err) < 0)
		return -1;

	json_t *args = NULL;
	if (vjson_array(sc, path, "args", &args, err) < 0)
		return -1;
	size_t n_args = args ? json_array_size(args) : 0;
	if (n_args > MAX_ARGS_PER_RULE)
		return vs_err(err, 0, "%s.args: more than %d comparisons", path, MAX_ARGS_PER_RULE);
	if (n_args) {
		e->args = calloc(n_args, sizeof(*e->args));
		if (!e->args)
			return vs_err(err, ENOMEM, "%s.args", path);
	}
	unsigned int seen = 0;
	for (size_t i = 0; i < n_args; i++) {
		cleanup_free char *arg_path = NULL;
		if (asprintf(&arg_path, "%s.args[%zu]", path, i) < 0)
			return vs_err(err, ENOMEM, "%s.args", path);
		if (parse_arg(json_array_get(args, i), arg_path, &e->args[i], err) < 0)
			return -1;
		if (seen & (1U << e->args[i].arg))
			e->repeated_index = true;
		seen |= 1U << e->args[i].arg;
		e->n_args++;
	}
	return parse_names(names, path, e, err);
}

static int parse_syscalls(json_t *seccomp, struct seccomp_spec *s, vs_err_t *err)
{
	json_t *arr = NULL;
	int rc = vjson_array(seccomp, s->path, "syscalls", &arr, err);
	if (rc <= 0)
		return rc;
	size_t n = json_array_size(arr);
	s->entries = calloc(n ? n : 1, sizeof(*s->entries));
	if (!s->entries)
		return vs_err(err, ENOMEM, "%s.syscalls", s->path);
	for (size_t i = 0; i < n; i++) {
		cleanup_free char *path = NULL;
		if (asprintf(&path, "%s.syscalls[%zu]", s->path, i) < 0)
			return vs_err(err, ENOMEM, "%s.syscalls", s->path);
		/* counted before parsing so a half-filled entry is freed too */
		s->n_entries++;
		if (parse_entry(json_array_get(arr, i), path, i, &s->entries[i], err) < 0)
			return -1;
	}
	return 0;
}

static bool notifies(const struct seccomp_spec *s)
{
	if (s->default_action == SCMP_ACT_NOTIFY)
		return true;
	for (size_t i = 0; i < s->n_entries; i++)
		if (s->entries[i].action == SCMP_ACT_NOTIFY)
			return true;
	return false;
}

/* SCMP_ACT_NOTIFY hands syscalls to a listener: the spec's listenerPath names the unix
 * socket the runtime sends the notify fd to. One without the other is refused. */
static int parse_listener(json_t *seccomp, struct seccomp_spec *s, vs_err_t *err)
{
	const char *listener = NULL, *metadata = NULL;
	if (vjson_string(seccomp, s->path, "listenerPath", &listener, err) < 0 ||
	    vjson_string(seccomp, s->path, "listenerMetadata", &metadata, err) < 0)
		return -1;
	bool notify = notifies(s);
	if (listener && *listener && listener[0] != '/')
		return vs_err(err, 0, "%s.listenerPath: must be an absolute path", s->path);
	if (notify && !(listener && *listener))
		return vs_err(err, 0, "%s.listenerPath: is required with SCMP_ACT_NOTIFY", s->path);
	if (!notify && listener && *listener)
		return vs_err(err, 0, "%s.listenerPath: no syscall has SCMP_ACT_NOTIFY", s->path);
	if ((s->flags & SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) && !notify)
		return vs_err(err, 0,
			      "%s.flags: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs "
			      "SCMP_ACT_NOTIFY",
			      s->path);
	if (!notify)
		return 0;
	if (!(s->listener_path = strdup(listener)) ||
	    (metadata && !(s->listener_metadata = strdup(metadata))))
		return vs_err(err, ENOMEM, "%s", s->path);
	return 0;
}

const char *seccomp_listener_path(const struct seccomp_spec *s)
{
	return s ? s->listener_path : NULL;
}

const char *seccomp_listener_metadata(const struct seccomp_spec *s)
{
	return s && s->listener_metadata ? s->listener_metadata : "";
}

int seccomp_spec_parse(json_t *seccomp, const char *path, struct seccomp_spec **out, vs_err_t *err)
{
	*out = NULL;
	if (!seccomp || json_is_null(seccomp))
		return 0;
	if (!path)
		path = "linux.seccomp";
	if (!json_is_object(seccomp))
		return vs_err(err, 0, "%s: must be an object", path);
	struct seccomp_spec *s = calloc(1, sizeof(*s));
	if (!s || !(s->path = strdup(path))) {
		free(s);
		return vs_err(err, ENOMEM, "%s", path);
	}
	if (parse_action(seccomp, path, "defaultAction", "defaultErrnoRet", &s->default_action,
			 err) < 0 ||
	    parse_archs(seccomp, s, err) < 0 || parse_flags(seccomp, s, err) < 0 ||
	    parse_syscalls(seccomp, s, err) < 0 || parse_listener(seccomp, s, err) < 0) {
		seccomp_spec_free(s);
		return -1;
	}
	*out = s;
	return 0;
}

void seccomp_spec_free(struct seccomp_spec *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_entries; i++) {
		struct seccomp_entry *e = &s->entries[i];
		for (size_t k = 0; k < e->n_nrs; k++)
			free(e->names[k]);
		free(e->names);
		free(e->nrs);
		free(e->args);
	}
	free(s->entries);
	free(s->archs);
	free(s->path);
	free(s->listener_path);
	free(s->listener_metadata);
	free(s);
}

size_t seccomp_spec_rule_count(const struct seccomp_spec *s)
{
	size_t n = 0;
	for (size_t i = 0; s && i < s->n_entries; i++)
		n += s->entries[i].n_nrs;
	return n;
}

static void release_ctx(scmp_filter_ctx *ctx)
{
	if (*ctx)
		seccomp_release(*ctx);
}

static int add_rules(scmp_filter_ctx ctx, const struct seccomp_spec *s,
		     const struct seccomp_entry *e, size_t k, vs_err_t *err)
{
	int rc = 0;
	if (e->n_args == 0) {
		rc = seccomp_rule_add_array(ctx, e->action, e->nrs[k], 0, NULL);
	} else if (e->repeated_index) {
		/* libseccomp cannot AND two comparisons of one argument; runc (and Docker's
		 * profiles, which rely on it) add one rule per comparison instead. */
		for (size_t a = 0; a < e->n_args && rc == 0; a++)
			rc = seccomp_rule_add_array(ctx, e->action, e->nrs[k], 1, &e->args[a]);
	} else {
		rc = seccomp_rule_add_array(ctx, e->action, e->nrs[k], (unsigned int)e->n_args,
					    e->args);
	}
	if (rc < 0)
		return vs_err(err, -rc, "%s.syscalls[%zu]: add a rule for `%s`", s->path, e->index,
			      e->names[k]);
	return 0;
}

static int export_bpf(scmp_filter_ctx ctx, const struct seccomp_spec *s, struct seccomp_prog **out,
		      vs_err_t *err)
{
	cleanup_close int fd = memfd_create("vessel-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return vs_err(err, errno, "memfd_create");
	int rc = seccomp_export_bpf(ctx, fd);
	if (rc < 0)
		return vs_err(err, -rc, "%s: export the BPF program", s->path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return vs_err(err, errno, "fstat memfd");
	size_t bytes = (size_t)st.st_size;
	size_t len = bytes / sizeof(struct sock_filter);
	if (bytes % sizeof(struct sock_filter) || len == 0)
		return vs_err(err, 0, "%s: libseccomp exported %zu bytes, not a BPF program",
			      s->path, bytes);
	if (len > BPF_MAXINSNS)
		return vs_err(err, 0,
			      "%s: the filter has %zu BPF instructions, the kernel takes at most "
			      "%d",
			      s->path, len, BPF_MAXINSNS);
	struct seccomp_prog *p = malloc(sizeof(*p) + bytes);
	if (!p)
		return vs_err(err, ENOMEM, "%s", s->path);
	ssize_t got = pread(fd, p->insns, bytes, 0);
	if (got != (ssize_t)bytes) {
		free(p);
		return vs_err(err, got < 0 ? errno : EIO, "read the BPF program back");
	}
	p->len = (unsigned short)len;
	p->flags = s->flags;
	/* the kernel refuses TSYNC with a listener unless told to fail on a thread it
	 * cannot synchronise (ESRCH) instead of returning its id */
	if (s->listener_path)
		p->flags |=
		    SECCOMP_FILTER_FLAG_NEW_LISTENER |
		    (p->flags & SECCOMP_FILTER_FLAG_TSYNC ? SECCOMP_FILTER_FLAG_TSYNC_ESRCH : 0);
	*out = p;
	return 0;
}

int seccomp_compile(const struct seccomp_spec *s, struct seccomp_prog **out, vs_err_t *err)
{
	*out = NULL;
	if (!s)
		return 0;
	__attribute__((cleanup(release_ctx))) scmp_filter_ctx ctx = seccomp_init(s->default_action);
	if (!ctx)
		return vs_err(err, 0,
			      "%s.defaultAction: not supported by this kernel or libseccomp",
			      s->path);
	/* No SCMP_FLTATR_CTL_OPTIMIZE binary tree: since Linux 5.11 the kernel caches the
	 * syscalls a filter always allows, so the filter's shape hardly shows at run time,
	 * while the tree made compiling a Docker-sized profile for three arches slower
	 * (about 30 ms instead of 18 here; it saved 0.7 ms at install). */
	int rc;
	for (size_t i = 0; i < s->n_archs; i++) {
		rc = seccomp_arch_add(ctx, s->archs[i]);
		if (rc < 0 && rc != -EEXIST)
			return vs_err(err, -rc, "%s.architectures[%zu]", s->path, i);
	}
	for (size_t i = 0; i < s->n_entries; i++) {
		const struct seccomp_entry *e = &s->entries[i];
		/* libseccomp refuses a rule that repeats the default action; it changes
		 * nothing anyway (runc skips it the same way). */
		if (e->action == s->default_action)
			continue;
		for (size_t k = 0; k < e->n_nrs; k++)
			if (add_rules(ctx, s, e, k, err) < 0)
				return -1;
	}
	return export_bpf(ctx, s, out, err);
}

void seccomp_prog_free(struct seccomp_prog *p)
{
	free(p);
}

size_t seccomp_prog_len(const struct seccomp_prog *p)
{
	return p ? p->len : 0;
}

bool seccomp_prog_notifies(const struct seccomp_prog *p)
{
	return p && (p->flags & SECCOMP_FILTER_FLAG_NEW_LISTENER);
}

int seccomp_install(const struct seccomp_prog *p, int *listener, vs_err_t *err)
{
	if (listener)
		*listener = -1;
	if (!p)
		return 0;
	struct sock_fprog prog = {.len = p->len, .filter = (struct sock_filter *)p->insns};
	/* Without no_new_privs the kernel wants CAP_SYS_ADMIN effective. After setuid with
	 * KEEPCAPS it is only permitted: raise it for this one call and lower it again. */
	bool raised = false;
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1 &&
	    caps_effective_raise(CAP_SYS_ADMIN, &raised, err) < 0)
		return vs_err_wrap(err, "install the seccomp filter");
	long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, p->flags, &prog);
	int saved = errno;
	if (raised && caps_effective_lower(CAP_SYS_ADMIN, err) < 0)
		return vs_err_wrap(err, "after installing the seccomp filter");
	if (rc > 0 && (p->flags & SECCOMP_FILTER_FLAG_NEW_LISTENER)) {
		if (listener)
			*listener = (int)rc;
		else
			close((int)rc);
		return 0;
	}
	if (rc > 0)
		return vs_err(err, 0,
			      "install the seccomp filter: thread %ld cannot be synchronised "
			      "(SECCOMP_FILTER_FLAG_TSYNC)",
			      rc);
	if (rc < 0 && saved == EACCES)
		return vs_err(err, saved,
			      "install the seccomp filter: needs noNewPrivileges or "
			      "CAP_SYS_ADMIN");
	if (rc < 0)
		return vs_err(err, saved, "install the seccomp filter");
	return 0;
}

/* seccomp(2) checks the flags before it reads the program: EFAULT on a NULL program
 * means the flag is known, EINVAL that it is not. Nothing is installed either way. */
static bool kernel_has_flag(unsigned int flag)
{
	long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flag, NULL);
	return rc < 0 && errno == EFAULT;
}

json_t *seccomp_features_json(void)
{
	json_t *f = json_object();
	json_t *acts = json_array(), *cmps = json_array(), *archs = json_array(),
	       *known = json_array(), *supported = json_array();
	for (size_t i = 0; i < ARRAY_SIZE(actions); i++)
		json_array_append_new(acts, json_string(actions[i].name));
	for (size_t i = 0; i < ARRAY_SIZE(ops); i++)
		json_array_append_new(cmps, json_string(ops[i].name));
	for (size_t i = 0; i < ARRAY_SIZE(arch_names); i++)
		if (arch_token(arch_names[i]))
			json_array_append_new(archs, json_string(arch_names[i]));
	for (size_t i = 0; i < ARRAY_SIZE(flags); i++) {
		json_array_append_new(known, json_string(flags[i].name));
		if (kernel_has_flag(flags[i].flag))
			json_array_append_new(supported, json_string(flags[i].name));
	}
	json_object_set_new(f, "enabled", json_true());
	json_object_set_new(f, "actions", acts);
	json_object_set_new(f, "operators", cmps);
	json_object_set_new(f, "archs", archs);
	json_object_set_new(f, "knownFlags", known);
	json_object_set_new(f, "supportedFlags", supported);
	return f;
}
