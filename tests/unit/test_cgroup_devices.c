/* Device rules: the v1 lines, and the v2 eBPF program loaded and attached for real to a
 * test cgroup, checked from a child process moved into it. Runs as root. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/cgroup_internal.h"

#define ALLOW(t, maj, min, acc)                                                                    \
	{                                                                                          \
		.allow = true, .type = t, .major = maj, .minor = min, .access = acc                \
	}
#define DENY(t, maj, min, acc)                                                                     \
	{                                                                                          \
		.allow = false, .type = t, .major = maj, .minor = min, .access = acc               \
	}
#define RW (CG_ACC_READ | CG_ACC_WRITE)

Test(cgroup_devices, v1_lines)
{
	char lines[2][CG_DEV_LINE];
	struct cg_dev_rule all = ALLOW('a', -1, -1, CG_ACC_ALL);
	cr_assert_eq(cg_dev_rule_v1(&all, lines), 1);
	cr_assert_str_eq(lines[0], "a");
	struct cg_dev_rule null = ALLOW('c', 1, 3, CG_ACC_ALL);
	cr_assert_eq(cg_dev_rule_v1(&null, lines), 1);
	cr_assert_str_eq(lines[0], "c 1:3 rwm");
	struct cg_dev_rule pts = ALLOW('c', 136, -1, RW);
	cr_assert_eq(cg_dev_rule_v1(&pts, lines), 1);
	cr_assert_str_eq(lines[0], "c 136:* rw");
	struct cg_dev_rule mk = DENY('b', -1, -1, CG_ACC_MKNOD);
	cr_assert_eq(cg_dev_rule_v1(&mk, lines), 1);
	cr_assert_str_eq(lines[0], "b *:* m");
	/* the kernel would read "a 1:3 r" as "a": a narrow "a" rule is split by type */
	struct cg_dev_rule narrow = ALLOW('a', 1, 3, CG_ACC_READ);
	cr_assert_eq(cg_dev_rule_v1(&narrow, lines), 2);
	cr_assert_str_eq(lines[0], "b 1:3 r");
	cr_assert_str_eq(lines[1], "c 1:3 r");
}

static struct cg_dev_list emulate(const struct cg_dev_rule *rules, size_t n)
{
	struct cg_dev_list l;
	vs_err_t err = NULL;
	cr_assert_eq(cg_dev_v1_emulate(rules, n, &l, &err), 0);
	return l;
}

static void assert_exception(const struct cg_dev_list *l, size_t i, char type, int64_t maj,
			     int64_t min, unsigned acc)
{
	cr_assert_lt(i, l->n);
	cr_assert_eq(l->ex[i].type, type);
	cr_assert_eq(l->ex[i].major, maj);
	cr_assert_eq(l->ex[i].minor, min);
	cr_assert_eq(l->ex[i].access, acc, "exception %zu: access %u, want %u", i, l->ex[i].access,
		     acc);
}

Test(cgroup_devices, v1_model_last_match_wins)
{
	/* the usual shape: deny all, then what is allowed; repeated rules merge */
	struct cg_dev_rule usual[] = {DENY('a', -1, -1, CG_ACC_ALL), ALLOW('c', 1, 3, RW),
				      ALLOW('c', 136, -1, RW), ALLOW('c', 1, 3, CG_ACC_MKNOD)};
	struct cg_dev_list l = emulate(usual, 4);
	cr_assert_not(l.allow_all);
	cr_assert_eq(l.n, 2);
	assert_exception(&l, 0, 'c', 1, 3, CG_ACC_ALL);
	assert_exception(&l, 1, 'c', 136, -1, RW);
	cr_assert_eq(l.lossy, 0);
	cg_dev_list_free(&l);

	/* a later wildcard deny takes back what it covers (the kernel alone would not) */
	struct cg_dev_rule wide_deny[] = {DENY('a', -1, -1, CG_ACC_ALL),
					  ALLOW('c', 1, 3, CG_ACC_ALL), ALLOW('b', 8, 0, RW),
					  DENY('c', -1, -1, CG_ACC_WRITE)};
	l = emulate(wide_deny, 4);
	assert_exception(&l, 0, 'c', 1, 3, CG_ACC_READ | CG_ACC_MKNOD);
	assert_exception(&l, 1, 'b', 8, 0, RW);
	cg_dev_list_free(&l);

	/* allow everything but writes to /dev/zero: the exceptions are the denied ones */
	struct cg_dev_rule open_but[] = {ALLOW('a', -1, -1, CG_ACC_ALL),
					 DENY('c', 1, 5, CG_ACC_WRITE)};
	l = emulate(open_but, 2);
	cr_assert(l.allow_all);
	cr_assert_eq(l.n, 1);
	assert_exception(&l, 0, 'c', 1, 5, CG_ACC_WRITE);
	cr_assert_not(l.ex[0].allow);
	cg_dev_list_free(&l);

	/* a narrower "a" rule counts for both types */
	struct cg_dev_rule both[] = {DENY('a', -1, -1, CG_ACC_ALL), ALLOW('a', 7, -1, CG_ACC_READ)};
	l = emulate(both, 2);
	cr_assert_eq(l.n, 2);
	assert_exception(&l, 0, 'b', 7, -1, CG_ACC_READ);
	assert_exception(&l, 1, 'c', 7, -1, CG_ACC_READ);
	cg_dev_list_free(&l);

	/* a hole in a wider allow cannot be written to v1: flagged, the allow stays */
	struct cg_dev_rule hole[] = {DENY('a', -1, -1, CG_ACC_ALL), ALLOW('c', 1, -1, CG_ACC_ALL),
				     DENY('c', 1, 3, CG_ACC_WRITE)};
	l = emulate(hole, 3);
	cr_assert_eq(l.lossy, 3);
	assert_exception(&l, 0, 'c', 1, -1, CG_ACC_ALL);
	cg_dev_list_free(&l);
}

Test(cgroup_devices, bpf_program_shape)
{
	struct cg_dev_rule rules[] = {DENY('a', -1, -1, CG_ACC_ALL), ALLOW('c', 1, 3, RW)};
	struct bpf_insn *insns = NULL;
	size_t n = 0;
	vs_err_t err = NULL;
	cr_assert_eq(cg_dev_bpf_build(rules, 2, &insns, &n, &err), 0);
	/* prologue 7; allow c 1:3 rw: type, 3 access, major, minor, mov, exit = 8;
	 * deny all: mov, exit = 2, and it ends the program (no default epilogue) */
	cr_assert_eq(n, 7 + 8 + 2);
	cr_assert_eq(insns[n - 1].code, BPF_JMP | BPF_EXIT);
	/* the last rule is tested first and every jump lands inside the program */
	cr_assert_eq(insns[7].code, BPF_JMP | BPF_JNE | BPF_K);
	cr_assert_eq(insns[7].imm, BPF_DEVCG_DEV_CHAR);
	for (size_t i = 0; i < n; i++)
		if (BPF_CLASS(insns[i].code) == BPF_JMP && BPF_OP(insns[i].code) != BPF_EXIT)
			cr_assert(i + 1 + insns[i].off < n);
	cr_assert_eq(insns[n - 2].code, BPF_ALU64 | BPF_MOV | BPF_K);
	cr_assert_eq(insns[n - 2].imm, 0);
	free(insns);

	/* rules before a catch-all are never reached: left out */
	struct cg_dev_rule shadowed[] = {ALLOW('c', 1, 3, RW), ALLOW('a', -1, -1, CG_ACC_ALL)};
	cr_assert_eq(cg_dev_bpf_build(shadowed, 2, &insns, &n, &err), 0);
	cr_assert_eq(n, 7 + 2);
	cr_assert_eq(insns[n - 2].imm, 1);
	free(insns);
	/* no catch-all: what no rule matches is denied */
	struct cg_dev_rule one[] = {ALLOW('c', 1, 3, CG_ACC_ALL)};
	cr_assert_eq(cg_dev_bpf_build(one, 1, &insns, &n, &err), 0);
	cr_assert_eq(n, 7 + 5 + 2);
	cr_assert_eq(insns[n - 2].imm, 0);
	free(insns);
}

/* --- live checks: a child moved into the cgroup opens devices --- */

static int try_open(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);
	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

static int try_mknod(dev_t dev)
{
	char path[64];
	snprintf(path, sizeof(path), "/tmp/vessel-test-node-%d", (int)getpid());
	int rc = mknod(path, S_IFCHR | 0600, dev) < 0 ? errno : 0;
	unlink(path);
	return rc;
}

/* What the child saw, one errno per probe (0 = allowed). */
struct probes {
	int null_rw, zero_r, zero_w, mknod_null;
};

static struct probes probe_in(const char *dir)
{
	int pfd[2], go[2];
	cr_assert_eq(pipe(pfd), 0);
	cr_assert_eq(pipe(go), 0);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		char c;
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(2);
		struct probes p = {
		    .null_rw = try_open("/dev/null", O_RDWR),
		    .zero_r = try_open("/dev/zero", O_RDONLY),
		    .zero_w = try_open("/dev/zero", O_WRONLY),
		    .mknod_null = try_mknod(makedev(1, 3)),
		};
		if (write(pfd[1], &p, sizeof(p)) != sizeof(p))
			_exit(3);
		_exit(0);
	}
	close(go[0]);
	close(pfd[1]);
	vs_err_t err = NULL;
	cr_assert_eq(cg_writef(dir, "cgroup.procs", &err, "%d", (int)pid), 0, "%s",
		     err ? err->msg : "");
	cr_assert_eq(write(go[1], "x", 1), 1);
	struct probes p;
	cr_assert_eq(read(pfd[0], &p, sizeof(p)), (ssize_t)sizeof(p));
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(go[1]);
	close(pfd[0]);
	return p;
}

static char *v2_root(void)
{
	struct cg_layout *l = NULL;
	vs_err_t err = NULL;
	cr_assert_eq(cg_layout_detect(&l, &err), 0);
	char *root = NULL;
	for (size_t i = 0; i < l->n; i++)
		if (l->h[i].v2)
			root = strdup(l->h[i].mountpoint);
	cg_layout_free(l);
	cr_assert_not_null(root, "this host mounts no cgroup2 hierarchy");
	return root;
}

static char *v1_devices_root(void)
{
	struct cg_layout *l = NULL;
	vs_err_t err = NULL;
	cr_assert_eq(cg_layout_detect(&l, &err), 0);
	const struct cg_hier *h = cg_layout_owner(l, CG_DEVICES);
	cr_assert_not_null(h, "this host has no v1 devices hierarchy");
	char *root = strdup(h->mountpoint);
	cg_layout_free(l);
	return root;
}

static char *test_dir(const char *root, const char *what)
{
	char *dir = NULL;
	cr_assert_neq(asprintf(&dir, "%s/vessel-test-%s-%d", root, what, (int)getpid()), -1);
	cr_assert_eq(mkdir(dir, 0755), 0, "mkdir %s: %s", dir, strerror(errno));
	return dir;
}

static uint32_t attached_programs(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(fd, 0);
	uint32_t ids[8];
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.query.target_fd = (uint32_t)fd;
	attr.query.attach_type = BPF_CGROUP_DEVICE;
	attr.query.prog_ids = (uint64_t)(uintptr_t)ids;
	attr.query.prog_cnt = 8;
	cr_assert_eq(syscall(SYS_bpf, BPF_PROG_QUERY, &attr, sizeof(attr)), 0);
	close(fd);
	return attr.query.prog_cnt;
}

static void apply_v2(const char *dir, const struct cg_dev_rule *rules, size_t n)
{
	vs_err_t err = NULL;
	cr_assert_eq(cg_devices_v2_apply(dir, rules, n, &err), 0, "%s", err ? err->msg : "");
}

/* A failed assertion ends the test early: remove what it made all the same. */
static void remove_test_dirs(void)
{
	struct cg_layout *l = NULL;
	vs_err_t err = NULL;
	if (cg_layout_detect(&l, &err) < 0) {
		vs_err_free(&err);
		return;
	}
	for (size_t i = 0; i < l->n; i++) {
		char dir[512];
		snprintf(dir, sizeof(dir), "%s/vessel-test-devices-%d", l->h[i].mountpoint,
			 (int)getpid());
		rmdir(dir);
	}
	cg_layout_free(l);
}

Test(cgroup_devices, v2_ebpf_program_enforces_rules, .timeout = 30, .fini = remove_test_dirs)
{
	char *root = v2_root();
	char *dir = test_dir(root, "devices");

	/* deny all, then /dev/null read-write (not mknod) */
	struct cg_dev_rule only_null[] = {DENY('a', -1, -1, CG_ACC_ALL), ALLOW('c', 1, 3, RW)};
	apply_v2(dir, only_null, 2);
	cr_assert_eq(attached_programs(dir), 1);
	struct probes p = probe_in(dir);
	cr_assert_eq(p.null_rw, 0);
	cr_assert_eq(p.zero_r, EPERM);
	cr_assert_eq(p.zero_w, EPERM);
	cr_assert_eq(p.mknod_null, EPERM);

	/* replacing the rules replaces the program: allow all but writes to /dev/zero */
	struct cg_dev_rule no_zero_writes[] = {ALLOW('a', -1, -1, CG_ACC_ALL),
					       DENY('c', 1, 5, CG_ACC_WRITE)};
	apply_v2(dir, no_zero_writes, 2);
	cr_assert_eq(attached_programs(dir), 1);
	p = probe_in(dir);
	cr_assert_eq(p.null_rw, 0);
	cr_assert_eq(p.zero_r, 0);
	cr_assert_eq(p.zero_w, EPERM);
	cr_assert_eq(p.mknod_null, 0);

	/* last match wins: a later allow undoes an earlier deny */
	struct cg_dev_rule later_allow[] = {DENY('a', -1, -1, CG_ACC_ALL), DENY('c', 1, -1, RW),
					    ALLOW('c', 1, 5, CG_ACC_READ),
					    ALLOW('c', 1, 3, CG_ACC_ALL)};
	apply_v2(dir, later_allow, 4);
	p = probe_in(dir);
	cr_assert_eq(p.null_rw, 0);
	cr_assert_eq(p.zero_r, 0);
	cr_assert_eq(p.zero_w, EPERM);
	cr_assert_eq(p.mknod_null, 0);

	cr_assert_eq(rmdir(dir), 0, "rmdir %s: %s", dir, strerror(errno));
	free(dir);
	free(root);
}

Test(cgroup_devices, v1_rules_enforced, .timeout = 30, .fini = remove_test_dirs)
{
	char *root = v1_devices_root();
	char *dir = test_dir(root, "devices");
	struct cg_dev_rule only_null[] = {DENY('a', -1, -1, CG_ACC_ALL), ALLOW('c', 1, 3, RW)};
	vs_err_t err = NULL;
	cr_assert_eq(cg_devices_v1_apply(dir, only_null, 2, &err), 0, "%s", err ? err->msg : "");
	char *list = NULL;
	cr_assert_eq(cg_read(dir, "devices.list", &list, &err), 0);
	cr_assert_str_eq(list, "c 1:3 rw\n");
	free(list);
	struct probes p = probe_in(dir);
	cr_assert_eq(p.null_rw, 0);
	cr_assert_eq(p.zero_r, EPERM);
	cr_assert_eq(p.mknod_null, EPERM);

	/* update, exception by exception: /dev/null gains mknod, /dev/zero becomes readable */
	struct cg_dev_rule more[] = {DENY('a', -1, -1, CG_ACC_ALL), ALLOW('c', 1, 3, CG_ACC_ALL),
				     ALLOW('c', 1, 5, CG_ACC_READ)};
	cr_assert_eq(cg_devices_v1_apply(dir, more, 3, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(cg_read(dir, "devices.list", &list, &err), 0);
	cr_assert_str_eq(list, "c 1:3 rwm\nc 1:5 r\n");
	free(list);
	p = probe_in(dir);
	cr_assert_eq(p.null_rw, 0);
	cr_assert_eq(p.zero_r, 0);
	cr_assert_eq(p.zero_w, EPERM);
	cr_assert_eq(p.mknod_null, 0);

	/* and back: what is gone is taken away, what stays is untouched */
	cr_assert_eq(cg_devices_v1_apply(dir, only_null, 2, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(cg_read(dir, "devices.list", &list, &err), 0);
	cr_assert_str_eq(list, "c 1:3 rw\n");
	free(list);

	/* switching the default resets: allow all but writes to /dev/zero */
	struct cg_dev_rule open_but[] = {ALLOW('a', -1, -1, CG_ACC_ALL),
					 DENY('c', 1, 5, CG_ACC_WRITE)};
	cr_assert_eq(cg_devices_v1_apply(dir, open_but, 2, &err), 0, "%s", err ? err->msg : "");
	p = probe_in(dir);
	cr_assert_eq(p.zero_r, 0);
	cr_assert_eq(p.zero_w, EPERM);
	cr_assert_eq(p.mknod_null, 0);
	cr_assert_eq(rmdir(dir), 0, "rmdir %s: %s", dir, strerror(errno));
	free(dir);
	free(root);
}

/* A process using /dev/null while the rules are updated over and over never sees EPERM. */
Test(cgroup_devices, v1_update_leaves_no_gap, .timeout = 30, .fini = remove_test_dirs)
{
	char *root = v1_devices_root();
	char *dir = test_dir(root, "devices");
	struct cg_dev_rule a[] = {DENY('a', -1, -1, CG_ACC_ALL), ALLOW('c', 1, 3, RW)};
	struct cg_dev_rule b[] = {DENY('a', -1, -1, CG_ACC_ALL), ALLOW('c', 1, 5, CG_ACC_READ),
				  ALLOW('c', 1, 3, CG_ACC_ALL)};
	vs_err_t err = NULL;
	cr_assert_eq(cg_devices_v1_apply(dir, a, 2, &err), 0);

	int res[2], go[2];
	cr_assert_eq(pipe(res), 0);
	cr_assert_eq(pipe(go), 0);
	/* the child's count of opens so far: on a loaded host it may not run at all during
	 * 300 quick updates, so they go on until it has opened often enough */
	int *opens =
	    mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(opens, MAP_FAILED);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		char c;
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(2);
		/* open until the parent closes the pipe, counting refusals */
		int refused = 0, opened = 0;
		fcntl(go[0], F_SETFL, O_NONBLOCK);
		while (read(go[0], &c, 1) < 0 && errno == EAGAIN) {
			if (try_open("/dev/null", O_RDWR) == EPERM)
				refused++;
			opened++;
			__atomic_store_n(opens, opened, __ATOMIC_RELAXED);
		}
		int out[2] = {refused, opened};
		_exit(write(res[1], out, sizeof(out)) == sizeof(out) ? 0 : 3);
	}
	close(go[0]);
	close(res[1]);
	cr_assert_eq(cg_writef(dir, "cgroup.procs", &err, "%d", (int)pid), 0);
	cr_assert_eq(write(go[1], "x", 1), 1);
	time_t give_up = time(NULL) + 20;
	for (int i = 0;
	     i < 300 || (__atomic_load_n(opens, __ATOMIC_RELAXED) < 300 && time(NULL) < give_up);
	     i++)
		cr_assert_eq(cg_devices_v1_apply(dir, i % 2 ? a : b, i % 2 ? 2 : 3, &err), 0);
	close(go[1]);
	int out[2];
	cr_assert_eq(read(res[0], out, sizeof(out)), (ssize_t)sizeof(out));
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	cr_assert_gt(out[1], 0);
	cr_assert_eq(out[0], 0, "%d of %d opens of /dev/null refused during updates", out[0],
		     out[1]);
	close(res[0]);
	munmap(opens, sizeof(int));
	cr_assert_eq(rmdir(dir), 0, "rmdir %s: %s", dir, strerror(errno));
	free(dir);
	free(root);
}
