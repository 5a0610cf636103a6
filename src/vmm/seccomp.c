#include "vmm/seccomp.h"

#include <errno.h>
#include <jansson.h>
#include <seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <ucontext.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

/* The built-in lists. Observed with `strace -f` on `vessel vm run` (the demo guest with
 * 2 vCPUs, rng and a disk; the ASan build and the static release build), each thread's
 * calls kept; calls a thread makes on paths that run did not reach (io_uring completions,
 * the API socket, snapshot files, a vCPU's console output) were added from the code, and
 * docs/jail.md says which. Every list has what any thread needs to live and die; mmap and
 * mprotect come as rules (below) where the thread never maps code. */
#define COMMON                                                                                     \
	"brk", "clock_gettime", "clock_nanosleep", "exit", "exit_group", "futex", "getpid",        \
	    "gettid", "madvise", "munmap", "nanosleep", "restart_syscall", "rseq",                 \
	    "rt_sigprocmask", "rt_sigreturn", "sched_getaffinity", "sched_yield",                  \
	    "set_robust_list", "sigaltstack", "tgkill", "write", "writev"

/* epoll_ctl, timerfd_settime and one openat: a device's activation, which runs on the vCPU
 * that writes DRIVER_OK (seen in the audit log of a jailed Linux boot in the emulated KVM
 * host; the openat found nothing to open in the jail and the boot went on); sendmsg:
 * virtio-fs's DRIVER_OK hands virtiofsd the memory table and the rings' eventfds */
static const char *const builtin_vcpu[] = {
    COMMON,	  "read",      "pread64",   "pwrite64",	       "close",
    "eventfd2",	  "getrandom", "epoll_ctl", "timerfd_settime", "openat",
    "newfstatat", "fstat",     "lseek",	    "fcntl",	       "sendmsg",
};

/* vsock: host connections accepted on its uds, the guest's to <uds>_PORT */
static const char *const builtin_worker[] = {
    COMMON,	 "read",	   "readv",	  "pread64",	     "preadv",
    "pwrite64",	 "pwritev",	   "preadv2",	  "pwritev2",	     "fsync",
    "fdatasync", "epoll_wait",	   "epoll_pwait", "epoll_ctl",	     "poll",
    "ppoll",	 "io_uring_enter", "getrandom",	  "timerfd_settime", "timerfd_gettime",
    "close",	 "fallocate",	   "lseek",	  "accept4",	     "connect",
    "shutdown",	 "sendmsg",	   "sendto",
};

/* The migration's sender: the socket to the destination (made by this thread, so only it
 * holds connect), guest RAM read and sent, the eventfd and futex it talks to the controller
 * with. */
static const char *const builtin_migration[] = {
    COMMON,	  "connect", "sendmsg",	 "sendto",     "recvfrom", "recvmsg", "read",
    "setsockopt", "close",   "shutdown", "getsockopt", "poll",	   "ppoll",
};

/* The main thread serves the API and the event loop, joins the others and exits; with
 * `vm api` the vCPUs and workers are started from it after its filter is on, so its list
 * holds theirs too (stacked filters allow only what both allow), and `seccomp` itself:
 * each of those threads loads its own, narrower filter on top. Its ioctl, socket, mmap and
 * mprotect are not narrowed: it builds and snapshots the VM (every KVM ioctl vessel has),
 * opens taps, sets the terminal, and a dynamic build may load code (libgcc_s, NSS). */
static const char *const builtin_main[] = {
    COMMON,
    "accept4",
    "access",
    "arch_prctl",
    "bind",
    "clone",
    "clone3",
    "close",
    "connect",
    "dup",
    "dup2",
    "dup3",
    "epoll_create1",
    "epoll_ctl",
    "epoll_pwait",
    "epoll_wait",
    "eventfd2",
    "fallocate",
    "fcntl",
    "fdatasync",
    "flock", /* the VM inventory's lock (inventory/record.c) */
    "fstat",
    "fsync",
    "ftruncate",
    "getdents64",
    "getrandom",
    "getsockopt",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ioctl",
    "kill",
    "link", /* base/usock.c: a listening socket moved to its path (no renameat2) */
    "linkat",
    "listen",
    "lseek",
    "memfd_create",
    "mkdirat",
    "mmap",
    "mprotect",
    "mremap",
    "newfstatat",
    "open",
    "openat",
    "pipe2",
    "poll",
    "ppoll",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readlink",
    "readlinkat",
    "readv",
    "recvfrom",
    "recvmsg",
    "rename",
    "renameat",
    "renameat2", /* base/usock.c: a listening socket moved to its path */
    "rt_sigaction",
    "rt_sigtimedwait",
    "seccomp",
    "sendmsg",
    "sendto",
    "setsockopt",
    "shutdown",
    "signalfd4",
    "socket",
    "statx",
    "sysinfo",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_settime",
    "unlink",
    "unlinkat",
    "wait4",
    "waitid",
#if defined(__SANITIZE_ADDRESS__)
    /* LeakSanitizer's check at exit: a tracer thread stops and reads every thread */
    "getdents",
    "ptrace",
    "process_vm_readv",
    "getppid",
    "sched_setaffinity",
    "set_tid_address",
#endif
};

/* A call allowed only with one argument condition (a thread's rules for one call are
 * alternatives). Found by grepping every ioctl(, socket( and mmap( in src/vmm and src/base
 * and following each to the thread it runs on; docs/jail.md has the table. */
struct builtin_rule {
	const char *name;
	struct scmp_arg_cmp arg;
};

/* The kernel reads an ioctl's request and a socket's domain as 32-bit ints: the upper
 * half of the register is left out of the comparison as the kernel leaves it out. */
/* clang-format off */
#define DWORD_EQ(i, v) {.arg = (i), .op = SCMP_CMP_MASKED_EQ, .datum_a = 0xffffffffu, .datum_b = (v)}
#define IOCTL(req) {"ioctl", DWORD_EQ(1, req)}
#define SOCKET(domain) {"socket", DWORD_EQ(0, domain)}
/* no new executable memory: a thread that reads guest input never maps code, so a bug
 * there cannot turn written data into code by way of mmap or mprotect */
#define NO_EXEC(call) {call, {.arg = 2, .op = SCMP_CMP_MASKED_EQ, .datum_a = PROT_EXEC, .datum_b = 0}}
/* clang-format on */

/* a sanitizer's report asks isatty(stderr) (colours) before it prints: the report must not
 * become a seccomp kill */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

static const struct builtin_rule rules_vcpu[] = {
    IOCTL(KVM_RUN),
    /* report(): a fatal exit's registers */
    IOCTL(KVM_GET_REGS),
    IOCTL(KVM_GET_SREGS),
    /* the serial port's, the i8042's and the RTC's interrupt, raised by a register write */
    IOCTL(KVM_IRQ_LINE),
    /* virtio-net's DRIVER_OK: the tap's offloads as the driver accepted them */
    IOCTL(TUNSETOFFLOAD),
#if SANITIZED
    IOCTL(TCGETS),
#endif
    NO_EXEC("mmap"),
    NO_EXEC("mprotect"),
};

static const struct builtin_rule rules_worker[] = {
    /* the RTC's timer thread: its periodic and alarm interrupts (virtio's go by irqfd) */
    IOCTL(KVM_IRQ_LINE),
#if SANITIZED
    IOCTL(TCGETS),
#endif
    /* vsock: the guest's connections to <uds>_PORT */
    SOCKET(AF_UNIX),
    NO_EXEC("mmap"),
    NO_EXEC("mprotect"),
};

static const struct builtin_rule rules_migration[] = {
    /* each round's dirty pages (the log is switched on and off by the main thread) */
    IOCTL(KVM_GET_DIRTY_LOG),
#if SANITIZED
    IOCTL(TCGETS),
#endif
    /* the destination: unix:PATH, tcp:HOST:PORT (IPv4 or [IPv6]) */
    SOCKET(AF_UNIX),
    SOCKET(AF_INET),
    SOCKET(AF_INET6),
    NO_EXEC("mmap"),
    NO_EXEC("mprotect"),
};

static const char *const thread_names[VMM_NTHREADS] = {"main", "vcpu", "worker", "migration"};

/* --test-seccomp-violation THREAD[:CASE]: what the thread does once its filter is on */
enum violation {
	VIOLATE_CALL,	/* a call no list has */
	VIOLATE_IOCTL,	/* an ioctl no vCPU, worker or migration list has */
	VIOLATE_SOCKET, /* a netlink socket */
	VIOLATE_EXEC,	/* an executable mapping */
};
static const char *const violation_names[] = {"", "ioctl", "socket", "exec"};

static struct {
	bool off;
	bool log; /* development only: log what would be refused instead of refusing it */
	bool custom;
	struct vmm_seccomp_lists lists; /* with custom */
	int violate;			/* test only: the kind that misbehaves, or -1 */
	enum violation violation;
} cfg = {.violate = -1};

static __thread const char *thread_kind = "vessel";

void vmm_seccomp_lists_free(struct vmm_seccomp_lists *l)
{
	for (int k = 0; k < VMM_NTHREADS; k++) {
		free(l->rules[k]);
		l->rules[k] = NULL;
		l->n[k] = 0;
	}
}

/* A JSON integer as the 64 bits it stands for: a negative one is its two's complement
 * (-1: every bit). A dword is 32 bits: -2^31 .. 2^32-1, kept as its low half. */
static int arg_value(json_t *v, bool dword, uint64_t *out)
{
	if (!json_is_integer(v))
		return -1;
	json_int_t i = json_integer_value(v);
	if (dword && (i < INT32_MIN || i > (json_int_t)UINT32_MAX))
		return -1;
	*out = dword ? (uint32_t)i : (uint64_t)i;
	return 0;
}

/* One condition, Firecracker's seccompiler shape: {"index": 0..5, "type": "dword"|"qword"
 * (default qword), "op": "eq"|"ne"|"lt"|"le"|"gt"|"ge"|{"masked_eq": MASK}, "val": N,
 * "comment": "..."}. A dword is compared on the argument's low 32 bits, which libseccomp
 * can do for equality only (a masked one): other operators need qword. */
static int parse_arg(json_t *c, struct scmp_arg_cmp *out, const char *at, vs_err_t *err)
{
	static const struct {
		const char *name;
		enum scmp_compare op;
	} ops[] = {{"eq", SCMP_CMP_EQ}, {"ne", SCMP_CMP_NE}, {"lt", SCMP_CMP_LT},
		   {"le", SCMP_CMP_LE}, {"gt", SCMP_CMP_GT}, {"ge", SCMP_CMP_GE}};
	if (!json_is_object(c))
		return vs_err(err, 0,
			      "seccomp filter: %s: must be an object {\"index\", \"op\", "
			      "\"val\"}",
			      at);
	const char *key;
	json_t *v;
	json_object_foreach(c, key, v)
	{
		if (strcmp(key, "index") != 0 && strcmp(key, "type") != 0 &&
		    strcmp(key, "op") != 0 && strcmp(key, "val") != 0 &&
		    strcmp(key, "comment") != 0)
			return vs_err(err, 0, "seccomp filter: %s: unknown key `%s`", at, key);
	}
	json_t *index = json_object_get(c, "index"), *type = json_object_get(c, "type");
	json_t *op = json_object_get(c, "op"), *val = json_object_get(c, "val");
	json_t *comment = json_object_get(c, "comment");
	if (!json_is_integer(index) || json_integer_value(index) < 0 ||
	    json_integer_value(index) >= VMM_SECCOMP_MAX_ARGS)
		return vs_err(err, 0,
			      "seccomp filter: %s.index: must be an argument's index, 0 to 5", at);
	if (comment && !json_is_string(comment))
		return vs_err(err, 0, "seccomp filter: %s.comment: must be a string", at);
	bool dword = false;
	if (type) {
		const char *t = json_string_value(type);
		if (!t || (strcmp(t, "dword") != 0 && strcmp(t, "qword") != 0))
			return vs_err(err, 0, "seccomp filter: %s.type: \"dword\" or \"qword\"",
				      at);
		dword = strcmp(t, "dword") == 0;
	}
	*out = (struct scmp_arg_cmp){.arg = (unsigned)json_integer_value(index)};
	uint64_t mask = UINT64_MAX;
	if (json_is_object(op) && json_object_size(op) == 1 && json_object_get(op, "masked_eq")) {
		if (arg_value(json_object_get(op, "masked_eq"), dword, &mask) < 0)
			return vs_err(err, 0,
				      "seccomp filter: %s.op.masked_eq: must be a %s integer", at,
				      dword ? "32-bit" : "64-bit");
		out->op = SCMP_CMP_MASKED_EQ;
	} else {
		const char *o = json_string_value(op);
		size_t i = 0;
		while (o && i < ARRAY_SIZE(ops) && strcmp(o, ops[i].name) != 0)
			i++;
		if (!o || i == ARRAY_SIZE(ops))
			return vs_err(err, 0,
				      "seccomp filter: %s.op: \"eq\", \"ne\", \"lt\", \"le\", "
				      "\"gt\", \"ge\" or {\"masked_eq\": MASK}",
				      at);
		out->op = ops[i].op;
	}
	uint64_t value;
	if (arg_value(val, dword, &value) < 0)
		return vs_err(err, 0, "seccomp filter: %s.val: must be a %s integer", at,
			      dword ? "32-bit" : "64-bit");
	if (dword && out->op != SCMP_CMP_EQ && out->op != SCMP_CMP_MASKED_EQ)
		return vs_err(
		    err, 0,
		    "seccomp filter: %s: a dword compares with \"eq\" or \"masked_eq\" "
		    "only (the upper half of the register would take part): use \"qword\"",
		    at);
	if (dword) {
		/* the upper half is masked out: the kernel never reads it */
		out->op = SCMP_CMP_MASKED_EQ;
		mask &= 0xffffffffu;
	}
	if (out->op == SCMP_CMP_MASKED_EQ) {
		/* a val with bits outside the mask never matches, as in seccompiler */
		out->datum_a = mask;
		out->datum_b = value;
	} else {
		out->datum_a = value;
	}
	return 0;
}

/* A list entry: "name", or {"syscall": "name", "args": [condition...], "comment": "..."} */
static int parse_rule(json_t *e, struct vmm_seccomp_rule *out, const char *at, vs_err_t *err)
{
	memset(out, 0, sizeof(*out));
	json_t *name = e, *args = NULL;
	if (json_is_object(e)) {
		const char *key;
		json_t *v;
		json_object_foreach(e, key, v)
		{
			if (strcmp(key, "syscall") != 0 && strcmp(key, "args") != 0 &&
			    strcmp(key, "comment") != 0)
				return vs_err(err, 0, "seccomp filter: %s: unknown key `%s`", at,
					      key);
		}
		name = json_object_get(e, "syscall");
		args = json_object_get(e, "args");
		json_t *comment = json_object_get(e, "comment");
		if (comment && !json_is_string(comment))
			return vs_err(err, 0, "seccomp filter: %s.comment: must be a string", at);
	}
	if (!json_is_string(name))
		return vs_err(err, 0,
			      "seccomp filter: %s: not a syscall name or {\"syscall\": NAME, "
			      "\"args\": [...]}",
			      at);
	out->nr = seccomp_syscall_resolve_name(json_string_value(name));
	if (out->nr == __NR_SCMP_ERROR)
		return vs_err(err, 0, "seccomp filter: %s: not a syscall name", at);
	if (!args)
		return 0;
	if (!json_is_array(args) || json_array_size(args) > VMM_SECCOMP_MAX_ARGS)
		return vs_err(err, 0,
			      "seccomp filter: %s.args: must be an array of at most %d "
			      "conditions",
			      at, VMM_SECCOMP_MAX_ARGS);
	size_t i;
	json_t *c;
	json_array_foreach(args, i, c)
	{
		char cat[96];
		snprintf(cat, sizeof(cat), "%s.args[%zu]", at, i);
		if (parse_arg(c, &out->args[i], cat, err) < 0)
			return -1;
		/* libseccomp takes one comparison per argument in a rule */
		for (size_t j = 0; j < i; j++)
			if (out->args[j].arg == out->args[i].arg)
				return vs_err(
				    err, 0,
				    "seccomp filter: %s: argument %u is already compared in "
				    "this rule (a second rule for the call is an "
				    "alternative)",
				    cat, out->args[i].arg);
		out->nargs = (unsigned)i + 1;
	}
	return 0;
}

int vmm_seccomp_parse(const char *text, size_t len, struct vmm_seccomp_lists *out, vs_err_t *err)
{
	memset(out, 0, sizeof(*out));
	json_error_t je;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return vs_err(err, 0, "seccomp filter: line %d: %s", je.line, je.text);
	int r = -1;
	bool seen[VMM_NTHREADS] = {false};
	if (!json_is_object(root)) {
		vs_err(err, 0,
		       "seccomp filter: must be an object {\"main\": [...], \"vcpu\": "
		       "[...], \"worker\": [...]}");
		goto out;
	}
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v)
	{
		int k = -1;
		for (int i = 0; i < VMM_NTHREADS; i++)
			if (strcmp(key, thread_names[i]) == 0)
				k = i;
		if (k < 0) {
			vs_err(err, 0,
			       "seccomp filter: `%s`: not a thread (main, vcpu, worker, migration)",
			       key);
			goto out;
		}
		if (!json_is_array(v)) {
			vs_err(err, 0, "seccomp filter: %s: must be an array of syscall rules",
			       key);
			goto out;
		}
		seen[k] = true;
		out->rules[k] = calloc(json_array_size(v) + 1, sizeof(*out->rules[k]));
		if (!out->rules[k]) {
			vs_err(err, ENOMEM, "seccomp filter");
			goto out;
		}
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e)
		{
			char at[48];
			snprintf(at, sizeof(at), "%s[%zu]", thread_names[k], i);
			if (parse_rule(e, &out->rules[k][i], at, err) < 0)
				goto out;
			out->n[k] = i + 1;
		}
	}
	for (int k = 0; k < VMM_NTHREADS; k++)
		if (!seen[k] && k != VMM_THREAD_MIGRATION) {
			vs_err(err, 0, "seccomp filter: no list for the %s thread",
			       thread_names[k]);
			goto out;
		}
	r = 0;
out:
	json_decref(root);
	if (r < 0)
		vmm_seccomp_lists_free(out);
	return r;
}

/* Async-signal-safe enough for a process that is about to die: the name lookup
 * allocates, the rest is write(2). The arguments say which ioctl, domain or flags an
 * argument rule refused. */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	char buf[320];
	char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, si->si_syscall);
	char args[160] = "";
#if defined(__x86_64__)
	const greg_t *g = ((ucontext_t *)uc)->uc_mcontext.gregs;
	snprintf(args, sizeof(args), " with arguments 0x%llx, 0x%llx, 0x%llx",
		 (unsigned long long)g[REG_RDI], (unsigned long long)g[REG_RSI],
		 (unsigned long long)g[REG_RDX]);
#elif defined(__aarch64__)
	const unsigned long long *x = ((ucontext_t *)uc)->uc_mcontext.regs;
	snprintf(args, sizeof(args), " with arguments 0x%llx, 0x%llx, 0x%llx", x[0], x[1], x[2]);
#else
	(void)uc;
#endif
	int n = snprintf(buf, sizeof(buf),
			 "vessel: seccomp: the %s thread made the forbidden syscall %s (%d)%s; "
			 "stopping the VM\n",
			 thread_kind, name ? name : "?", si->si_syscall, args);
	if (n > 0)
		(void)!write(STDERR_FILENO, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf));
	_exit(VMM_EXIT_SECCOMP);
}

static int load_file(const char *path, vs_err_t *err)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return vs_err(err, errno, "--seccomp-filter %s", path);
	char *text = NULL;
	size_t cap = 0, len = 0;
	for (;;) {
		if (len + 4096 > cap) {
			char *t = realloc(text, cap = cap * 2 + 4096);
			if (!t) {
				free(text);
				fclose(f);
				return vs_err(err, ENOMEM, "--seccomp-filter %s", path);
			}
			text = t;
		}
		size_t n = fread(text + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	fclose(f);
	int r = vmm_seccomp_parse(text, len, &cfg.lists, err);
	free(text);
	if (r < 0)
		return vs_err_wrap(err, "--seccomp-filter %s", path);
	cfg.custom = true;
	return 0;
}

static int parse_violation(const char *k, vs_err_t *err)
{
	const char *colon = strchr(k, ':');
	size_t tlen = colon ? (size_t)(colon - k) : strlen(k);
	for (int t = 0; t < VMM_NTHREADS; t++)
		if (strlen(thread_names[t]) == tlen && strncmp(k, thread_names[t], tlen) == 0)
			cfg.violate = t;
	cfg.violation = VIOLATE_CALL;
	if (colon) {
		int found = -1;
		for (size_t i = 1; i < ARRAY_SIZE(violation_names); i++)
			if (strcmp(colon + 1, violation_names[i]) == 0)
				found = (int)i;
		if (found < 0)
			cfg.violate = -1;
		else
			cfg.violation = (enum violation)found;
	}
	if (cfg.violate < 0)
		return vs_err(err, 0,
			      "--test-seccomp-violation `%s`: main, vcpu, worker or migration, "
			      "optionally with :ioctl, :socket or :exec",
			      k);
	return 0;
}

int vmm_seccomp_setup(int *argc, char **argv, vs_err_t *err)
{
	int out = 0;
	int i = 0;
	for (; i < *argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--no-seccomp") == 0) {
			cfg.off = true;
		} else if (strcmp(argv[i], "--seccomp-log") == 0) {
			cfg.log = true;
		} else if (strcmp(argv[i], "--seccomp-filter") == 0 && i + 1 < *argc) {
			if (load_file(argv[++i], err) < 0)
				return -1;
		} else if (strcmp(argv[i], "--test-seccomp-violation") == 0 && i + 1 < *argc) {
			if (parse_violation(argv[++i], err) < 0)
				return -1;
		} else {
			argv[out++] = argv[i];
		}
	}
	for (; i < *argc; i++)
		argv[out++] = argv[i];
	argv[out] = NULL;
	*argc = out;
	if (cfg.off)
		return 0;
	struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO};
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0)
		return vs_err(err, errno, "seccomp: claim SIGSYS");
	return 0;
}

static int add_names(scmp_filter_ctx ctx, const char *const *names, size_t n, vs_err_t *err)
{
	for (size_t i = 0; i < n; i++) {
		int nr = seccomp_syscall_resolve_name(names[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* a built-in name this architecture lacks (open on arm64) */
		int e = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (e < 0)
			return vs_err(err, -e, "seccomp: allow %s", names[i]);
	}
	return 0;
}

static int add_builtin_rules(scmp_filter_ctx ctx, const struct builtin_rule *r, size_t n,
			     vs_err_t *err)
{
	for (size_t i = 0; i < n; i++) {
		int nr = seccomp_syscall_resolve_name(r[i].name);
		int e = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, 1, &r[i].arg);
		if (e < 0)
			return vs_err(err, -e, "seccomp: allow %s if argument %u ...", r[i].name,
				      r[i].arg.arg);
	}
	return 0;
}

static int add_rules(scmp_filter_ctx ctx, const struct vmm_seccomp_rule *r, size_t n, vs_err_t *err)
{
	for (size_t i = 0; i < n; i++) {
		int e = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, r[i].nr, r[i].nargs, r[i].args);
		if (e < 0) {
			char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, r[i].nr);
			vs_err(err, -e, "seccomp: rule %zu (%s)", i, name ? name : "?");
			free(name);
			return -1;
		}
	}
	return 0;
}

static int add_builtin(scmp_filter_ctx ctx, enum vmm_thread kind, vs_err_t *err)
{
	switch (kind) {
	case VMM_THREAD_MAIN:
		return add_names(ctx, builtin_main, ARRAY_SIZE(builtin_main), err);
	case VMM_THREAD_VCPU:
		if (add_names(ctx, builtin_vcpu, ARRAY_SIZE(builtin_vcpu), err) < 0)
			return -1;
		return add_builtin_rules(ctx, rules_vcpu, ARRAY_SIZE(rules_vcpu), err);
	case VMM_THREAD_WORKER:
		if (add_names(ctx, builtin_worker, ARRAY_SIZE(builtin_worker), err) < 0)
			return -1;
		return add_builtin_rules(ctx, rules_worker, ARRAY_SIZE(rules_worker), err);
	default:
		if (add_names(ctx, builtin_migration, ARRAY_SIZE(builtin_migration), err) < 0)
			return -1;
		return add_builtin_rules(ctx, rules_migration, ARRAY_SIZE(rules_migration), err);
	}
}

/* Test only: each case would be harmless were it let through (a syslog size query, an
 * ioctl on no fd, a socket and a mapping closed at once). */
static void violate(void)
{
	switch (cfg.violation) {
	case VIOLATE_CALL:
		syscall(SYS_syslog, 10L, NULL, 0L);
		break;
	case VIOLATE_IOCTL:
		syscall(SYS_ioctl, -1L, (unsigned long)KVM_CREATE_VM, 0L);
		break;
	case VIOLATE_SOCKET: {
		int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0);
		if (fd >= 0)
			close(fd);
		break;
	}
	case VIOLATE_EXEC: {
		void *p =
		    mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED)
			munmap(p, 4096);
		break;
	}
	}
}

int vmm_seccomp_apply(enum vmm_thread kind, vs_err_t *err)
{
	thread_kind = thread_names[kind];
	if (cfg.off)
		return 0;
	/* a thread that blocks SIGSYS would die unreported */
	sigset_t sys;
	sigemptyset(&sys);
	sigaddset(&sys, SIGSYS);
	pthread_sigmask(SIG_UNBLOCK, &sys, NULL);
	/* SIGSYS with the call's number: the handler names it and stops the VMM */
	scmp_filter_ctx ctx = seccomp_init(cfg.log ? SCMP_ACT_LOG : SCMP_ACT_TRAP);
	if (cfg.log) {
		/* the audit log names the thread by its comm */
		char comm[16];
		snprintf(comm, sizeof(comm), "vs-%s", thread_kind);
		prctl(PR_SET_NAME, comm);
	}
	if (!ctx)
		return vs_err(err, ENOMEM, "seccomp: %s thread's filter", thread_kind);
	int r;
	if (cfg.custom && cfg.lists.rules[kind])
		r = add_rules(ctx, cfg.lists.rules[kind], cfg.lists.n[kind], err);
	else
		r = add_builtin(ctx, kind, err);
	if (r == 0) {
		int e = seccomp_load(ctx);
		if (e < 0)
			r = vs_err(err, -e, "seccomp: load the %s thread's filter", thread_kind);
	}
	seccomp_release(ctx);
	if (r == 0 && cfg.violate == (int)kind)
		violate();
	return r;
}

void vmm_seccomp_apply_or_die(enum vmm_thread kind)
{
	cleanup_err vs_err_t err = NULL;
	if (vmm_seccomp_apply(kind, &err) < 0) {
		vs_report(err);
		_exit(VMM_EXIT_SECCOMP);
	}
}
