/* Real cgroups on this host (as root): create, enter a forked child, apply limits, read
 * them back from the files, see them enforced, freeze, persist, destroy leaving nothing.
 * Every test works under /vessel-test-<pid>, removed at the end even when it fails.
 * The v2-only and v1-only cases run on layouts that keep only those hierarchies of this
 * (hybrid) host, so all three code paths meet real kernel files. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"
#include "sandbox/cgroup_internal.h"

#define OK(call)                                                                                   \
	do {                                                                                       \
		vs_err_t _e = NULL;                                                                \
		int _rc = (call);                                                                  \
		cr_assert_eq(_rc, 0, "%s: %s", #call, _e ? _e->msg : "");                          \
	} while (0)

static char *test_path(const char *leaf)
{
	char *p = NULL;
	cr_assert_neq(asprintf(&p, "/vessel-test-%d/%s", (int)getpid(), leaf), -1);
	return p;
}

static struct cg_layout *host_layout(void)
{
	struct cg_layout *l = NULL;
	vs_err_t err = NULL;
	cr_assert_eq(cg_layout_detect(&l, &err), 0);
	return l;
}

/* The host's layout keeping only its v2 (want_v2) or only its v1 hierarchies. */
static struct cg_layout *host_layout_only(bool want_v2)
{
	struct cg_layout *host = host_layout();
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	for (size_t i = 0; i < host->n; i++) {
		const struct cg_hier *h = &host->h[i];
		if (h->v2 != want_v2)
			continue;
		fprintf(f, "%zu 1 0:%zu %s %s rw - %s %s rw,%s\n", 100 + i, 100 + i, h->root,
			h->mountpoint, h->v2 ? "cgroup2" : "cgroup", h->v2 ? "cgroup2" : "cgroup",
			h->v2 ? "" : h->options);
	}
	fclose(f);
	cg_layout_free(host);
	struct cg_layout *l = NULL;
	vs_err_t err = NULL;
	cr_assert_eq(cg_layout_parse(text, NULL, &l, &err), 0, "%s", err ? err->msg : "");
	free(text);
	cr_assert_gt(l->n, 0, "this host has no %s hierarchy", want_v2 ? "cgroup2" : "v1");
	return l;
}

static struct cgroup_resources *resources(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	cr_assert_not_null(j, "%s", jerr.text);
	struct cgroup_resources *r = NULL;
	OK(cgroup_resources_parse(j, "linux.resources", &r, &_e));
	json_decref(j);
	return r;
}

static void apply(struct cgroup *cg, const char *text)
{
	struct cgroup_resources *r = resources(text);
	OK(cgroup_apply(cg, r, &_e));
	cgroup_resources_free(r);
}

static void apply_fails(struct cgroup *cg, const char *text, const char *want)
{
	struct cgroup_resources *r = resources(text);
	vs_err_t err = NULL;
	cr_assert_eq(cgroup_apply(cg, r, &err), -1, "applied %s", text);
	cr_assert(strstr(err->msg, want), "`%s` does not contain `%s`", err->msg, want);
	vs_err_free(&err);
	cgroup_resources_free(r);
}

static char *read_file(const char *dir, const char *file)
{
	char *text = NULL;
	OK(cg_read(dir, file, &text, &_e));
	text[strcspn(text, "\n")] = '\0';
	return text;
}

static void assert_file(const char *dir, const char *file, const char *want)
{
	char *text = read_file(dir, file);
	cr_assert_str_eq(text, want, "%s/%s", dir, file);
	free(text);
}

static pid_t sleeper(void)
{
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		for (;;)
			pause();
	}
	return pid;
}

static void assert_killed(pid_t pid)
{
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %#x", status);
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static bool exists_in(const char *dir, const char *file)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", dir, file);
	return exists(p);
}

/* Nothing of /vessel-test-<pid> in any hierarchy of the host. */
static void assert_nothing_left(void)
{
	struct cg_layout *l = host_layout();
	for (size_t i = 0; i < l->n; i++) {
		char dir[512];
		snprintf(dir, sizeof(dir), "%s/vessel-test-%d", l->h[i].mountpoint, (int)getpid());
		cr_assert_not(exists(dir), "%s is left behind", dir);
	}
	cg_layout_free(l);
}

static const struct cg_dir *dir_of(struct cgroup *cg, enum cg_ctrl c)
{
	const struct cg_dir *d = cg_dir_for(cg, c);
	cr_assert_not_null(d, "no %s directory", cg_ctrl_name(c));
	return d;
}

/* Runs fn in a child moved into cg first; returns the child's wait status. */
static int run_inside(struct cgroup *cg, int (*fn)(void))
{
	int go[2];
	cr_assert_eq(pipe(go), 0);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		char c;
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(100);
		_exit(fn());
	}
	close(go[0]);
	OK(cgroup_enter(cg, pid, &_e));
	cr_assert_eq(write(go[1], "x", 1), 1);
	close(go[1]);
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return status;
}

/* The largest huge page size this host offers, in the cgroup files' naming ("2MB", "1GB"):
 * hosts differ (some have only 2 MiB pages), so a test takes what is there. */
static const char *largest_huge_size(void)
{
	static char name[32];
	DIR *dir = opendir("/sys/kernel/mm/hugepages");
	cr_assert_not_null(dir, "no /sys/kernel/mm/hugepages on this host");
	unsigned long best = 0, kb;
	struct dirent *e;
	while ((e = readdir(dir)))
		if (sscanf(e->d_name, "hugepages-%lukB", &kb) == 1 && kb > best)
			best = kb;
	closedir(dir);
	cr_assert(best >= 1024 && best % 1024 == 0, "no huge page size of a MiB or more listed");
	if (best % (1ul << 20) == 0)
		snprintf(name, sizeof(name), "%luGB", best >> 20);
	else
		snprintf(name, sizeof(name), "%luMB", best >> 10);
	cr_log_info("largest huge page size on this host: %s", name);
	return name;
}

static int hugetlb_was_enabled = -1; /* in the cgroup2 root's subtree_control */

static void note_hugetlb(const char *v2root)
{
	char *text = NULL;
	OK(cg_read(v2root, "cgroup.subtree_control", &text, &_e));
	hugetlb_was_enabled = strstr(text, "hugetlb") != NULL;
	free(text);
}

/* Kills and removes whatever a failed test left, and gives the host's cgroup2 root its
 * subtree_control back when nothing else lives under it. */
static void cleanup(void)
{
	struct cg_layout *l = NULL;
	vs_err_t err = NULL;
	if (cg_layout_detect(&l, &err) < 0) {
		vs_err_free(&err);
		return;
	}
	for (size_t i = 0; i < l->n; i++) {
		char dirs[2][512];
		snprintf(dirs[0], sizeof(dirs[0]), "%s/vessel-test-%d", l->h[i].mountpoint,
			 (int)getpid());
		snprintf(dirs[1], sizeof(dirs[1]), "%s/vessel/vessel-test-rel-%d",
			 l->h[i].mountpoint, (int)getpid());
		for (int k = 0; k < 2; k++) {
			if (!exists(dirs[k]))
				continue;
			pid_t *pids = NULL;
			size_t n = 0, cap = 0;
			if (cg_read_procs(dirs[k], true, &pids, &n, &cap, &err) == 0)
				for (size_t j = 0; j < n; j++)
					kill(pids[j], SIGKILL);
			vs_err_free(&err);
			free(pids);
			if (cg_rmdir_tree(dirs[k], cg_now_ms() + 2000, &err) < 0)
				fprintf(stderr, "cleanup: %s\n", err->msg);
			vs_err_free(&err);
		}
		/* as a delete does: off again unless some cgroup now holds a hugetlb limit */
		if (l->h[i].v2 && hugetlb_was_enabled == 0) {
			struct cg_dir root = {.v2 = true,
					      .mountpoint = l->h[i].mountpoint,
					      .root_enabled = CG_BIT(CG_HUGETLB)};
			cg_v2_give_back(&root);
		}
	}
	cg_layout_free(l);
}

TestSuite(cgroup_live, .timeout = 60, .fini = cleanup);

Test(cgroup_live, create_enter_limit_stats_freeze_destroy)
{
	char *path = test_path("c1");
	struct cgroup *cg = NULL;
	OK(cgroup_create(path, "c1", &cg, &_e));
	cr_assert_str_eq(cgroup_path(cg), path);

	/* one directory per hierarchy of the host, all made */
	struct cg_layout *l = host_layout();
	const struct cgroup_mount *m;
	cr_assert_eq(cgroup_mounts(cg, &m), l->n);
	for (size_t i = 0; i < l->n; i++)
		cr_assert(exists(m[i].host_dir), "%s", m[i].host_dir);
	cg_layout_free(l);
	/* v1 cpuset got cpus and mems from its parent, or no task could join */
	if (cg_dir_for(cg, CG_CPUSET) && !cg_dir_for(cg, CG_CPUSET)->v2) {
		char *cpus = read_file(dir_of(cg, CG_CPUSET)->dir, "cpuset.cpus");
		cr_assert_neq(strlen(cpus), 0);
		free(cpus);
	}

	pid_t pid = sleeper();
	OK(cgroup_enter(cg, pid, &_e));
	char procfile[64], *own = NULL;
	snprintf(procfile, sizeof(procfile), "/proc/%d/cgroup", (int)pid);
	OK(vs_read_file(procfile, 65536, &own, NULL, &_e));
	char want[256];
	snprintf(want, sizeof(want), "memory:%s\n", path);
	cr_assert(strstr(own, want), "%s", own);
	free(own);

	apply(cg, "{\"memory\": {\"limit\": 67108864}, \"pids\": {\"limit\": 16},"
		  " \"cpu\": {\"shares\": 512, \"quota\": 50000, \"period\": 100000}}");
	const struct cg_dir *mem = dir_of(cg, CG_MEMORY), *pids = dir_of(cg, CG_PIDS);
	assert_file(mem->dir, mem->v2 ? "memory.max" : "memory.limit_in_bytes", "67108864");
	assert_file(pids->dir, "pids.max", "16");
	const struct cg_dir *cpu = dir_of(cg, CG_CPU);
	if (cpu->v2) {
		assert_file(cpu->dir, "cpu.weight", "59");
		assert_file(cpu->dir, "cpu.max", "50000 100000");
	} else {
		assert_file(cpu->dir, "cpu.shares", "512");
		assert_file(cpu->dir, "cpu.cfs_quota_us", "50000");
	}
	/* update: raise the memory limit, lift pids, set it again */
	apply(cg, "{\"memory\": {\"limit\": 134217728}, \"pids\": {\"limit\": -1}}");
	assert_file(mem->dir, mem->v2 ? "memory.max" : "memory.limit_in_bytes", "134217728");
	assert_file(pids->dir, "pids.max", "max");
	apply(cg, "{\"pids\": {\"limit\": 16}}");

	pid_t *list = NULL;
	size_t n = 0;
	OK(cgroup_pids(cg, &list, &n, &_e));
	cr_assert_eq(n, 1);
	cr_assert_eq(list[0], pid);
	free(list);

	vs_err_t err = NULL;
	json_t *stats = cgroup_stats(cg, &err);
	cr_assert_not_null(stats);
	json_t *jp = json_object_get(stats, "pids");
	cr_assert_eq(json_integer_value(json_object_get(jp, "limit")), 16);
	cr_assert_eq(json_integer_value(json_object_get(jp, "current")), 1);
	json_t *usage = json_object_get(json_object_get(stats, "memory"), "usage");
	cr_assert_eq(json_integer_value(json_object_get(usage, "limit")), 134217728);
	cr_assert(json_is_integer(json_object_get(usage, "usage")));
	cr_assert_not_null(json_object_get(json_object_get(stats, "cpu"), "usage"));
	json_decref(stats);

	OK(cgroup_freeze(cg, true, &_e));
	const struct cg_dir *fz = cg_dir_for(cg, CG_FREEZER);
	if (fz)
		assert_file(fz->dir, "freezer.state", "FROZEN");
	OK(cgroup_freeze(cg, false, &_e));
	if (fz)
		assert_file(fz->dir, "freezer.state", "THAWED");

	/* a later `vessel delete` works from state.json alone */
	json_t *state = cgroup_to_json(cg);
	char *saved = json_dumps(state, 0);
	json_decref(state);
	cgroup_free(cg);
	json_t *j = json_loads(saved, 0, NULL);
	free(saved);
	struct cgroup *again = NULL;
	OK(cgroup_from_json(j, &again, &_e));
	json_decref(j);
	OK(cgroup_destroy(again, &_e));
	assert_killed(pid);
	assert_nothing_left();
	OK(cgroup_destroy(again, &_e)); /* idempotent */
	cgroup_free(again);
	free(path);
}

static int fork_once(void)
{
	pid_t p = fork();
	if (p == 0)
		_exit(0);
	if (p < 0)
		return errno == EAGAIN ? 42 : 43;
	waitpid(p, NULL, 0);
	return 0;
}

static int eat_memory(void)
{
	size_t len = 256 << 20;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 44;
	for (size_t i = 0; i < len; i += 4096)
		p[i] = 1;
	return 0;
}

Test(cgroup_live, limits_are_enforced)
{
	char *path = test_path("enforce");
	struct cgroup *cg = NULL;
	OK(cgroup_create(path, "enforce", &cg, &_e));
	apply(cg, "{\"pids\": {\"limit\": 1}}");
	int status = run_inside(cg, fork_once);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 42, "fork under pids.max=1: %#x",
		  status);
	/* swap equal to the limit: no escape into swap */
	apply(cg, "{\"pids\": {\"limit\": 64},"
		  " \"memory\": {\"limit\": 33554432, \"swap\": 33554432}}");
	status = run_inside(cg, eat_memory);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		  "256 MiB under a 32 MiB limit: %#x", status);
	OK(cgroup_destroy(cg, &_e));
	cgroup_free(cg);
	assert_nothing_left();
	free(path);
}

Test(cgroup_live, failed_create_leaves_nothing)
{
	/* a real hierarchy, then one whose mount point does not exist */
	struct cg_layout *host = host_layout();
	const struct cg_hier *mem = cg_layout_owner(host, CG_MEMORY);
	char text[1024];
	snprintf(text, sizeof(text),
		 "35 31 0:32 / %s rw - cgroup cgroup rw,memory\n"
		 "99 31 0:99 / /nonexistent-vessel-test rw - cgroup cgroup rw,pids\n",
		 mem->mountpoint);
	cg_layout_free(host);
	struct cg_layout *l = NULL;
	vs_err_t err = NULL;
	OK(cg_layout_parse(text, NULL, &l, &_e));
	char *path = test_path("broken");
	struct cgroup *cg = NULL;
	cr_assert_eq(cg_create_in(l, path, "broken", &cg, &err), -1);
	cr_assert(strstr(err->msg, "mkdir `/nonexistent-vessel-test"), "%s", err->msg);
	vs_err_free(&err);
	cr_assert_null(cg);
	assert_nothing_left();
	cg_layout_free(l);

	/* refused paths and ids create nothing either */
	cr_assert_eq(cgroup_create("/a/../../etc", "x", &cg, &err), -1);
	cr_assert(strstr(err->msg, "linux.cgroupsPath: `/a/../../etc` must not contain `..`"), "%s",
		  err->msg);
	vs_err_free(&err);
	cr_assert_eq(cgroup_create("/", "x", &cg, &err), -1);
	cr_assert(strstr(err->msg, "must not be the root cgroup"), "%s", err->msg);
	vs_err_free(&err);
	cr_assert_eq(cgroup_create(NULL, "a/b", &cg, &err), -1);
	cr_assert(strstr(err->msg, "container id `a/b` cannot name a cgroup"), "%s", err->msg);
	vs_err_free(&err);
	free(path);
}

Test(cgroup_live, busy_cgroup_is_refused_and_kept)
{
	char *path = test_path("busy");
	struct cgroup *cg = NULL, *second = NULL;
	OK(cgroup_create(path, "busy", &cg, &_e));
	pid_t pid = sleeper();
	OK(cgroup_enter(cg, pid, &_e));
	vs_err_t err = NULL;
	cr_assert_eq(cgroup_create(path, "busy", &second, &err), -1);
	cr_assert(strstr(err->msg, "already has processes"), "%s", err->msg);
	vs_err_free(&err);
	/* the failed attempt did not take the first container's directories away */
	const struct cgroup_mount *m;
	size_t n = cgroup_mounts(cg, &m);
	for (size_t i = 0; i < n; i++)
		cr_assert(exists(m[i].host_dir), "%s", m[i].host_dir);
	OK(cgroup_destroy(cg, &_e));
	assert_killed(pid);
	cgroup_free(cg);
	assert_nothing_left();
	free(path);
}

Test(cgroup_live, relative_path_goes_under_vessel)
{
	char rel[64];
	snprintf(rel, sizeof(rel), "vessel-test-rel-%d/x", (int)getpid());
	struct cgroup *cg = NULL;
	OK(cgroup_create(rel, "x", &cg, &_e));
	char want[96];
	snprintf(want, sizeof(want), "/vessel/%s", rel);
	cr_assert_str_eq(cgroup_path(cg), want);
	const struct cg_dir *mem = dir_of(cg, CG_MEMORY);
	cr_assert(strstr(mem->dir, want), "%s", mem->dir);
	OK(cgroup_destroy(cg, &_e));
	char parent[512];
	snprintf(parent, sizeof(parent), "%s/vessel/vessel-test-rel-%d", mem->mountpoint,
		 (int)getpid());
	cr_assert_not(exists(parent), "%s is left behind", parent);
	cgroup_free(cg);
}

Test(cgroup_live, hybrid_hugetlb_goes_to_cgroup2)
{
	struct cg_layout *host = host_layout();
	const struct cg_hier *owner = cg_layout_owner(host, CG_HUGETLB);
	cr_assert_not_null(owner, "no hugetlb controller on this host");
	cr_assert(owner->v2, "this test is about hosts whose cgroup2 owns hugetlb");
	char *h_root = strdup(owner->mountpoint);
	note_hugetlb(owner->mountpoint);
	cg_layout_free(host);

	char *path = test_path("huge");
	struct cgroup *cg = NULL;
	OK(cgroup_create(path, "huge", &cg, &_e));
	apply(cg, "{\"hugepageLimits\": [{\"pageSize\": \"2MB\", \"limit\": 4194304}],"
		  " \"memory\": {\"limit\": 67108864}}");
	const struct cg_dir *h = dir_of(cg, CG_HUGETLB);
	cr_assert(h->v2);
	assert_file(h->dir, "hugetlb.2MB.max", "4194304");
	/* the unified map writes cgroup2 files verbatim; v1-owned ones are not there */
	char file[64], body[128];
	snprintf(file, sizeof(file), "hugetlb.%s.max", largest_huge_size());
	snprintf(body, sizeof(body), "{\"unified\": {\"%s\": \"0\"}}", file);
	apply(cg, body);
	assert_file(h->dir, file, "0");
	apply_fails(cg, "{\"unified\": {\"memory.max\": \"1\"}}",
		    "linux.resources.unified.memory.max: no such file in the cgroup v2 directory");
	apply_fails(cg, "{\"hugepageLimits\": [{\"pageSize\": \"64KB\", \"limit\": 1}]}",
		    "linux.resources.hugepageLimits[0].pageSize: no 64KB huge pages on this host");
	/* net_cls is not mounted here: refused, never silently dropped */
	apply_fails(cg, "{\"network\": {\"classID\": 1048577}}",
		    "linux.resources.network.classID: the net_cls cgroup controller is not "
		    "available on this host");
	json_t *stats = cgroup_stats(cg, NULL);
	json_t *huge = json_object_get(json_object_get(stats, "hugetlb"), "2MB");
	cr_assert_not_null(huge);
	cr_assert_eq(json_integer_value(json_object_get(huge, "usage")), 0);
	json_decref(stats);

	/* what the container switched on at the cgroup2 root is in state.json, and a delete
	 * from there switches it off again when nothing else lives under the root */
	json_t *state = cgroup_to_json(cg);
	json_t *on = NULL;
	for (size_t i = 0; i < cg->n; i++)
		if (cg->d[i].v2)
			on = json_object_get(json_array_get(json_object_get(state, "dirs"), i),
					     "rootEnabled");
	if (!hugetlb_was_enabled)
		cr_assert_str_eq(json_string_value(json_array_get(on, 0)), "hugetlb");
	cgroup_free(cg);
	OK(cgroup_from_json(state, &cg, &_e));
	json_decref(state);
	OK(cgroup_destroy(cg, &_e));
	cgroup_free(cg);
	assert_nothing_left();
	char *root_ctl = read_file(h_root, "cgroup.subtree_control");
	/* not guarded by cg_v2_limited(): that check itself once took the kernel's
	 * "unlimited" (9223372036854771712) for a limit, and hid its own bug */
	if (!hugetlb_was_enabled)
		cr_assert_not(strstr(root_ctl, "hugetlb"), "hugetlb left on at the root: %s",
			      root_ctl);
	cr_assert_not(cg_v2_limited(h_root, "hugetlb"), "an unlimited hugetlb read as a limit");
	free(root_ctl);
	free(h_root);
	free(path);
}

Test(cgroup_live, root_controller_given_back_by_the_last_user)
{
	struct cg_layout *host = host_layout();
	const struct cg_hier *owner = cg_layout_owner(host, CG_HUGETLB);
	cr_assert(owner && owner->v2, "this test is about hosts whose cgroup2 owns hugetlb");
	char *root = strdup(owner->mountpoint);
	cg_layout_free(host);
	note_hugetlb(root);

	char *pa = test_path("a"), *pb = test_path("b");
	struct cgroup *a = NULL, *b = NULL;
	OK(cgroup_create(pa, "a", &a, &_e));
	OK(cgroup_create(pb, "b", &b, &_e));
	apply(a, "{\"hugepageLimits\": [{\"pageSize\": \"2MB\", \"limit\": 2097152}]}");
	apply(b, "{\"hugepageLimits\": [{\"pageSize\": \"2MB\", \"limit\": 4194304}]}");
	cr_assert(cg_v2_limited(root, "hugetlb"));
	/* b goes first: a still has its limit, so hugetlb stays on */
	OK(cgroup_destroy(b, &_e));
	assert_file(dir_of(a, CG_HUGETLB)->dir, "hugetlb.2MB.max", "2097152");
	char *ctl = read_file(root, "cgroup.subtree_control");
	cr_assert(strstr(ctl, "hugetlb"), "%s", ctl);
	free(ctl);
	/* a was the last (unless another process set a hugetlb limit meanwhile): the root
	 * is as before */
	OK(cgroup_destroy(a, &_e));
	if (!hugetlb_was_enabled && !cg_v2_limited(root, "hugetlb")) {
		ctl = read_file(root, "cgroup.subtree_control");
		cr_assert_not(strstr(ctl, "hugetlb"), "%s", ctl);
		free(ctl);
	}
	cgroup_free(a);
	cgroup_free(b);
	assert_nothing_left();
	free(pa);
	free(pb);
	free(root);
}

Test(cgroup_live, v2_only_layout)
{
	struct cg_layout *l = host_layout_only(true);
	note_hugetlb(l->h[0].mountpoint);
	char *path = test_path("v2");
	struct cgroup *cg = NULL;
	OK(cg_create_in(l, path, "v2", &cg, &_e));
	const struct cgroup_mount *m;
	cr_assert_eq(cgroup_mounts(cg, &m), 1);
	cr_assert_str_eq(m[0].fstype, "cgroup2");
	cr_assert_str_eq(m[0].options, "");

	apply(cg, "{\"hugepageLimits\": [{\"pageSize\": \"2MB\", \"limit\": 2097152}]}");
	assert_file(m[0].host_dir, "hugetlb.2MB.max", "2097152");
	apply_fails(cg, "{\"memory\": {\"limit\": 67108864}}",
		    "linux.resources.memory: the memory cgroup controller is not available on this "
		    "host");
	apply_fails(cg, "{\"pids\": {\"limit\": 5}}",
		    "linux.resources.pids: the pids cgroup controller is not available");
	/* devices: no v1 devices hierarchy in this layout, so the eBPF program */
	apply(cg, "{\"devices\": [{\"allow\": false, \"access\": \"rwm\"}, {\"allow\": true,"
		  " \"type\": \"c\", \"major\": 1, \"minor\": 3, \"access\": \"rwm\"}]}");

	pid_t pid = sleeper();
	OK(cgroup_enter(cg, pid, &_e));
	OK(cgroup_freeze(cg, true, &_e));
	uint64_t frozen = 0;
	cr_assert_eq(cg_read_key(m[0].host_dir, "cgroup.events", "frozen", &frozen), 0);
	cr_assert_eq(frozen, 1);
	OK(cgroup_freeze(cg, false, &_e));
	cr_assert_eq(cg_read_key(m[0].host_dir, "cgroup.events", "frozen", &frozen), 0);
	cr_assert_eq(frozen, 0);
	/* cgroup.kill does the killing */
	OK(cgroup_destroy(cg, &_e));
	assert_killed(pid);
	cgroup_free(cg);
	cg_layout_free(l);
	assert_nothing_left();
	free(path);
}

Test(cgroup_live, v1_only_layout)
{
	struct cg_layout *l = host_layout_only(false);
	cr_assert_eq(l->mode, CG_MODE_LEGACY);
	char *path = test_path("v1");
	struct cgroup *cg = NULL;
	OK(cg_create_in(l, path, "v1", &cg, &_e));
	apply(cg,
	      "{\"memory\": {\"limit\": 67108864, \"swappiness\": 0}, \"pids\": {\"limit\": 8}}");
	assert_file(dir_of(cg, CG_MEMORY)->dir, "memory.swappiness", "0");
	/* a block I/O weight needs CFQ or BFQ on the host's disks: many hosts have neither */
	const char *blkio = dir_of(cg, CG_BLKIO)->dir;
	const char *weight = exists_in(blkio, "blkio.weight")	    ? "blkio.weight"
			     : exists_in(blkio, "blkio.bfq.weight") ? "blkio.bfq.weight"
								    : NULL;
	cr_log_info("block I/O weight on this host: %s", weight ? weight : "none");
	if (weight) {
		apply(cg, "{\"blockIO\": {\"weight\": 300}}");
		assert_file(blkio, weight, "300");
	} else {
		apply_fails(
		    cg, "{\"blockIO\": {\"weight\": 300}}",
		    "blockIO.weight: the disks' I/O scheduler offers no weight on this host");
	}
	apply_fails(cg, "{\"unified\": {\"memory.high\": \"1\"}}",
		    "linux.resources.unified: needs cgroup v2, which is not mounted");
	apply_fails(
	    cg, "{\"hugepageLimits\": [{\"pageSize\": \"2MB\", \"limit\": 1}]}",
	    "linux.resources.hugepageLimits: the hugetlb cgroup controller is not available");

	/* a child that forks once inside: destroy must get both without cgroup.kill */
	int go[2], ready[2];
	cr_assert_eq(pipe(go), 0);
	cr_assert_eq(pipe(ready), 0);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		char c;
		if (read(go[0], &c, 1) != 1 || fork() < 0 || write(ready[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	OK(cgroup_enter(cg, pid, &_e));
	char c;
	cr_assert_eq(write(go[1], "x", 1), 1);
	cr_assert_eq(read(ready[0], &c, 1), 1);
	pid_t *list = NULL;
	size_t n = 0;
	OK(cgroup_pids(cg, &list, &n, &_e));
	cr_assert_eq(n, 2);
	free(list);
	OK(cgroup_destroy(cg, &_e));
	assert_killed(pid);
	cgroup_free(cg);
	cg_layout_free(l);
	assert_nothing_left();
	free(path);
}

Test(cgroup_live, from_json_refuses_paths_outside_cgroupfs)
{
	struct cgroup *cg = NULL;
	vs_err_t err = NULL;
	json_t *j =
	    json_loads("{\"path\": \"/x\", \"dirs\": [{\"name\": \"memory\", \"dir\": "
		       "\"/sys/fs/cgroup/memory/../../../etc\", \"fstype\": \"cgroup\","
		       " \"options\": \"memory\", \"mountpoint\": \"/sys/fs/cgroup/memory\","
		       " \"controllers\": [\"memory\"], \"created\": 1}]}",
		       0, NULL);
	cr_assert_not_null(j);
	cr_assert_eq(cgroup_from_json(j, &cg, &err), -1);
	cr_assert(strstr(err->msg, "cgroup.dirs[0].dir: `/sys/fs/cgroup/memory/../../../etc` is "
				   "not a cgroup directory"),
		  "%s", err->msg);
	vs_err_free(&err);
	json_decref(j);
	/* a directory path that is in a cgroup mount only by its spelling */
	j = json_loads(
	    "{\"path\": \"/x\", \"dirs\": [{\"name\": \"memory\", \"dir\": "
	    "\"/sys/fs/cgroup/memoryx/y\", \"fstype\": \"cgroup\", \"options\": \"memory\","
	    " \"mountpoint\": \"/sys/fs/cgroup/memory\", \"controllers\": [\"memory\"],"
	    " \"created\": 1}]}",
	    0, NULL);
	cr_assert_eq(cgroup_from_json(j, &cg, &err), -1);
	cr_assert(strstr(err->msg, "is not a cgroup directory"), "%s", err->msg);
	vs_err_free(&err);
	json_decref(j);
	/* a mount point that is not (or no longer) a cgroup file system: the entry is
	 * dropped, so destroy never touches anything there, and the container stays
	 * deletable */
	j = json_loads(
	    "{\"path\": \"/x\", \"dirs\": [{\"name\": \"memory\", \"dir\": "
	    "\"/tmp/x\", \"fstype\": \"cgroup\", \"options\": \"memory\","
	    " \"mountpoint\": \"/tmp\", \"controllers\": [\"memory\"], \"created\": 1}]}",
	    0, NULL);
	cr_assert_eq(cgroup_from_json(j, &cg, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(cg->n, 0);
	cr_assert_eq(cgroup_destroy(cg, &err), 0);
	cgroup_free(cg);
	cg = NULL;
	json_decref(j);
}
