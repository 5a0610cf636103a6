#include "vmm/seccomp.h"

#include <errno.h>
#include <jansson.h>
#include <seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

/* The built-in lists. Observed with `strace -f` on `vessel vm run` (the demo guest with
 * 2 vCPUs, rng and a disk; the ASan build and the static release build), each thread's
 * calls kept; calls a thread makes on paths that run did not reach (io_uring completions,
 * the API socket, snapshot files, a vCPU's console output) were added from the code, and
 * docs/jail.md says which. Every list has what any thread needs to live and die. */
#define COMMON                                                                                     \
	"brk", "clock_gettime", "clock_nanosleep", "exit", "exit_group", "futex", "getpid",        \
	    "gettid", "madvise", "mmap", "mprotect", "munmap", "nanosleep", "restart_syscall",     \
	    "rseq", "rt_sigprocmask", "rt_sigreturn", "sched_getaffinity", "sched_yield",          \
	    "set_robust_list", "sigaltstack", "tgkill", "write", "writev"

/* epoll_ctl, timerfd_settime and one openat: a device's activation, which runs on the vCPU
 * that writes DRIVER_OK (seen in the audit log of a jailed Linux boot in the emulated KVM
 * host; the openat found nothing to open in the jail and the boot went on) */
static const char *const builtin_vcpu[] = {
    COMMON,   "ioctl",	    "read",	 "pread64",   "pwrite64",
    "close",  "eventfd2",   "getrandom", "epoll_ctl", "timerfd_settime",
    "openat", "newfstatat", "fstat",	 "lseek",     "fcntl",
    /* virtio-fs: DRIVER_OK hands virtiofsd the memory table and the rings' eventfds */
    "sendmsg",
};

static const char *const builtin_worker[] = {
    COMMON,	  "ioctl",	     "read",
    "readv",	  "pread64",	     "preadv",
    "pwrite64",	  "pwritev",	     "preadv2",
    "pwritev2",	  "fsync",	     "fdatasync",
    "epoll_wait", "epoll_pwait",     "epoll_ctl",
    "poll",	  "ppoll",	     "io_uring_enter",
    "getrandom",  "timerfd_settime", "timerfd_gettime",
    "close",	  "fallocate",	     "lseek",
    /* vsock: host connections accepted on its uds, the guest's to <uds>_PORT */
    "accept4",	  "socket",	     "connect",
    "shutdown",	  "sendmsg",	     "sendto",
};

/* The migration's sender: the socket to the destination (made by this thread, so only it
 * holds connect), guest RAM read and sent, KVM's dirty log (ioctl), the eventfd and futex
 * it talks to the controller with. */
static const char *const builtin_migration[] = {
    COMMON, "ioctl",	  "socket", "connect",	"sendmsg",    "sendto", "recvfrom", "recvmsg",
    "read", "setsockopt", "close",  "shutdown", "getsockopt", "poll",	"ppoll",
};

/* The main thread serves the API and the event loop, joins the others and exits; with
 * `vm api` the vCPUs and workers are started from it after its filter is on, so its list
 * holds theirs too (stacked filters allow only what both allow), and `seccomp` itself:
 * each of those threads loads its own, narrower filter on top. */
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

static const char *const thread_names[VMM_NTHREADS] = {"main", "vcpu", "worker", "migration"};

static struct {
	bool off;
	bool log; /* development only: log what would be refused instead of refusing it */
	bool custom;
	struct vmm_seccomp_lists lists; /* with custom */
	int violate;			/* test only: the kind that misbehaves, or -1 */
} cfg = {.violate = -1};

static __thread const char *thread_kind = "vessel";

void vmm_seccomp_lists_free(struct vmm_seccomp_lists *l)
{
	for (int k = 0; k < VMM_NTHREADS; k++) {
		for (size_t i = 0; i < l->n[k]; i++)
			free(l->names[k][i]);
		free(l->names[k]);
		l->names[k] = NULL;
		l->n[k] = 0;
	}
}

int vmm_seccomp_parse(const char *text, size_t len, struct vmm_seccomp_lists *out, vs_err_t *err)
{
	memset(out, 0, sizeof(*out));
	json_error_t je;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return vs_err(err, 0, "seccomp filter: line %d: %s", je.line, je.text);
	int r = -1;
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
			vs_err(err, 0, "seccomp filter: %s: must be an array of syscall names",
			       key);
			goto out;
		}
		out->names[k] = calloc(json_array_size(v) + 1, sizeof(char *));
		if (!out->names[k]) {
			vs_err(err, ENOMEM, "seccomp filter");
			goto out;
		}
		size_t i;
		json_t *name;
		json_array_foreach(v, i, name)
		{
			if (!json_is_string(name) || seccomp_syscall_resolve_name(json_string_value(
							 name)) == __NR_SCMP_ERROR) {
				vs_err(err, 0, "seccomp filter: %s[%zu]: not a syscall name", key,
				       i);
				goto out;
			}
			out->names[k][i] = strdup(json_string_value(name));
			if (!out->names[k][i]) {
				vs_err(err, ENOMEM, "seccomp filter");
				goto out;
			}
			out->n[k] = i + 1;
		}
	}
	for (int k = 0; k < VMM_NTHREADS; k++)
		if (!out->names[k] && k != VMM_THREAD_MIGRATION) {
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
 * allocates, the rest is write(2). */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	char buf[256];
	char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, si->si_syscall);
	int n = snprintf(buf, sizeof(buf),
			 "vessel: seccomp: the %s thread made the forbidden syscall %s (%d); "
			 "stopping the VM\n",
			 thread_kind, name ? name : "?", si->si_syscall);
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
			const char *k = argv[++i];
			for (int t = 0; t < VMM_NTHREADS; t++)
				if (strcmp(k, thread_names[t]) == 0)
					cfg.violate = t;
			if (cfg.violate < 0)
				return vs_err(
				    err, 0,
				    "--test-seccomp-violation `%s`: main, vcpu, worker or "
				    "migration",
				    k);
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
	if (cfg.custom && cfg.lists.names[kind])
		r = add_names(ctx, (const char *const *)cfg.lists.names[kind], cfg.lists.n[kind],
			      err);
	else if (kind == VMM_THREAD_MIGRATION)
		r = add_names(ctx, builtin_migration, ARRAY_SIZE(builtin_migration), err);
	else if (kind == VMM_THREAD_MAIN)
		r = add_names(ctx, builtin_main, ARRAY_SIZE(builtin_main), err);
	else if (kind == VMM_THREAD_VCPU)
		r = add_names(ctx, builtin_vcpu, ARRAY_SIZE(builtin_vcpu), err);
	else
		r = add_names(ctx, builtin_worker, ARRAY_SIZE(builtin_worker), err);
	if (r == 0) {
		int e = seccomp_load(ctx);
		if (e < 0)
			r = vs_err(err, -e, "seccomp: load the %s thread's filter", thread_kind);
	}
	seccomp_release(ctx);
	if (r == 0 && cfg.violate == (int)kind)
		/* test only: a call no list allows (reading the kernel log's size is harmless
		 * were it ever let through) */
		syscall(SYS_syslog, 10, NULL, 0);
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
