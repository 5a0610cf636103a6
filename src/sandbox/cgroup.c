/* A container's cgroup: its directory in every hierarchy, from creation to removal.
 * (Freezing is in cgroup_freeze.c, state.json in cgroup_state.c.) */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "sandbox/cgroup_internal.h"

#define KILL_WAIT_MS 2000
#define RMDIR_WAIT_MS 2000

const char *cgroup_path(const struct cgroup *cg)
{
	return cg->path;
}

size_t cgroup_mounts(const struct cgroup *cg, const struct cgroup_mount **out)
{
	*out = cg->mounts;
	return cg->n;
}

struct cg_dir *cg_dir_for(struct cgroup *cg, enum cg_ctrl c)
{
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < cg->n; i++)
			if (cg->d[i].v2 == (pass == 1) && (cg->d[i].ctrls & CG_BIT(c)))
				return &cg->d[i];
	return NULL;
}

struct cg_dir *cg_dir_v2(struct cgroup *cg)
{
	for (size_t i = 0; i < cg->n; i++)
		if (cg->d[i].v2)
			return &cg->d[i];
	return NULL;
}

void cgroup_free(struct cgroup *cg)
{
	if (!cg)
		return;
	cgroup_forget(cg);
	free(cg->d);
	free(cg->mounts);
	free(cg->path);
	free(cg);
}

int cg_finish(struct cgroup *cg, vs_err_t *err)
{
	cg->mounts = calloc(cg->n + 1, sizeof(*cg->mounts));
	if (!cg->mounts)
		return vs_err(err, ENOMEM, "cgroup");
	for (size_t i = 0; i < cg->n; i++)
		cg->mounts[i] = (struct cgroup_mount){.name = cg->d[i].name,
						      .host_dir = cg->d[i].dir,
						      .fstype = cg->d[i].fstype,
						      .options = cg->d[i].options};
	return 0;
}

/* "/vessel/ID", "/vessel/rel/path" or the absolute path, normalised; ".." refused. */
static char *container_path(const char *cgroups_path, const char *id, vs_err_t *err)
{
	if (!id || !*id || strchr(id, '/') || strcmp(id, ".") == 0 || strcmp(id, "..") == 0 ||
	    strlen(id) > 1024) {
		vs_err(err, 0, "container id `%s` cannot name a cgroup", id ? id : "");
		return NULL;
	}
	cleanup_free char *raw = NULL;
	int rc;
	if (!cgroups_path || !*cgroups_path)
		rc = asprintf(&raw, "/vessel/%s", id);
	else if (cgroups_path[0] != '/')
		rc = asprintf(&raw, "/vessel/%s", cgroups_path);
	else
		rc = asprintf(&raw, "%s", cgroups_path);
	if (rc < 0 || strlen(raw) > 2048) {
		vs_err(err, rc < 0 ? ENOMEM : 0, "linux.cgroupsPath: too long");
		return NULL;
	}
	char *out = calloc(1, strlen(raw) + 2);
	if (!out) {
		vs_err(err, ENOMEM, "cgroup path");
		return NULL;
	}
	int depth = 0;
	char *save = NULL;
	for (char *c = strtok_r(raw, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (strcmp(c, ".") == 0)
			continue;
		if (strcmp(c, "..") == 0 || ++depth > CG_MAX_DEPTH) {
			free(out);
			vs_err(err, 0,
			       "linux.cgroupsPath: `%s` must not contain `..` or over %d levels",
			       cgroups_path, CG_MAX_DEPTH);
			return NULL;
		}
		strcat(out, "/");
		strcat(out, c);
	}
	if (depth == 0) {
		free(out);
		vs_err(err, 0, "linux.cgroupsPath: must not be the root cgroup");
		return NULL;
	}
	return out;
}

/* v1 cpuset: a new cgroup starts with empty cpus and mems and refuses tasks until they
 * are set; copy them down from the nearest ancestor, top first. */
static int cpuset_fill(const char *mountpoint, const char *dir, vs_err_t *err)
{
	cleanup_free char *walk = strdup(dir);
	if (!walk)
		return vs_err(err, ENOMEM, "cpuset");
	size_t mlen = strlen(mountpoint);
	for (char *s = walk + mlen;;) {
		s = strchr(s + 1, '/');
		if (s)
			*s = '\0';
		cleanup_free char *parent = strdup(walk);
		if (!parent)
			return vs_err(err, ENOMEM, "cpuset");
		*strrchr(parent, '/') = '\0';
		const char *files[] = {"cpuset.cpus", "cpuset.mems"};
		for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
			cleanup_free char *mine = NULL, *theirs = NULL;
			if (cg_read(walk, files[i], &mine, err) < 0 ||
			    cg_read(parent, files[i], &theirs, err) < 0)
				return -1;
			if (strspn(mine, " \n") == strlen(mine) &&
			    cg_write(walk, files[i], theirs, err) < 0)
				return -1;
		}
		if (!s)
			return 0;
		*s = '/';
	}
}

/* Enables, in each ancestor below the hierarchy root, every controller it has: the
 * container's cgroup then offers what the host delegated, and the host's own root is
 * changed only when a limit needs it (cg_v2_enable). */
static void v2_delegate(const char *mountpoint, const char *dir)
{
	cleanup_free char *walk = strdup(dir);
	if (!walk)
		return;
	for (char *s = walk + strlen(mountpoint);;) {
		s = strchr(s + 1, '/');
		if (!s)
			return; /* the leaf holds processes: nothing to enable there */
		*s = '\0';
		cleanup_free char *avail = NULL;
		vs_err_t e = NULL;
		if (cg_read(walk, "cgroup.controllers", &avail, &e) == 0) {
			char *save = NULL;
			for (char *c = strtok_r(avail, " \n", &save); c;
			     c = strtok_r(NULL, " \n", &save))
				if (cg_writef(walk, "cgroup.subtree_control", &e, "+%s", c) < 0) {
					vs_debug("cgroup: enable %s in %s: %s", c, walk, e->msg);
					vs_err_free(&e);
				}
		}
		vs_err_free(&e);
		*s = '/';
	}
}

/* mkdir of each component of rel under the mount point. *created counts the levels,
 * from the leaf up, down to the first one this call made: removing that many from the
 * leaf upwards (missing ones included) undoes the call. */
static int make_dirs(const char *mountpoint, const char *rel, int *created, vs_err_t *err)
{
	cleanup_free char *p = NULL;
	if (asprintf(&p, "%s%s", mountpoint, rel) < 0)
		return vs_err(err, ENOMEM, "mkdir");
	int depth = 0, total = 0, first = 0;
	for (const char *s = rel; *s; s++)
		total += *s == '/';
	*created = 0;
	for (char *s = p + strlen(mountpoint);;) {
		s = strchr(s + 1, '/');
		if (s)
			*s = '\0';
		depth++;
		if (mkdir(p, 0755) == 0) {
			if (!first)
				first = depth;
			*created = total - first + 1;
		} else if (errno != EEXIST) {
			return vs_err(err, errno, "mkdir `%s`", p);
		}
		if (!s)
			return 0;
		*s = '/';
	}
}

/* Removes the leaf and the ancestors this container created; stops at one that is
 * still in use (another container's parent). */
static int remove_dirs(const struct cg_dir *d, int64_t deadline, vs_err_t *err)
{
	if (cg_rmdir_tree(d->dir, deadline, err) < 0)
		return -1;
	cleanup_free char *p = strdup(d->dir);
	if (!p)
		return vs_err(err, ENOMEM, "rmdir");
	for (int i = 1; i < d->created; i++) {
		char *slash = strrchr(p, '/');
		if (!slash || (size_t)(slash - p) <= strlen(d->mountpoint))
			break;
		*slash = '\0';
		if (rmdir(p) < 0 && errno != ENOENT)
			break;
	}
	return 0;
}

/* How many trailing levels of rel are missing under the mount point now: what
 * make_dirs would create, and so what a delete after a crash between the plan and the
 * mkdirs removes (a pre-existing leaf still counts: it is the container's). */
static int missing_levels(const char *mountpoint, const char *rel, vs_err_t *err)
{
	cleanup_free char *p = NULL;
	if (asprintf(&p, "%s%s", mountpoint, rel) < 0)
		return vs_err(err, ENOMEM, "cgroup");
	int missing = 0;
	for (;;) {
		if (access(p, F_OK) == 0)
			return missing ? missing : 1;
		missing++;
		char *slash = strrchr(p, '/');
		if (!slash || (size_t)(slash - p) <= strlen(mountpoint))
			return missing;
		*slash = '\0';
	}
}

static int plan_dir(struct cgroup *cg, const struct cg_hier *h, const char *path, vs_err_t *err)
{
	struct cg_dir *d = &cg->d[cg->n];
	memset(d, 0, sizeof(*d));
	/* a mount of a sub-tree (inside a container) shows the path relative to its root */
	const char *rel = path;
	size_t rlen = strlen(h->root);
	if (strcmp(h->root, "/") != 0 && strncmp(path, h->root, rlen) == 0 && path[rlen] == '/')
		rel = path + rlen;
	if (asprintf(&d->dir, "%s%s", h->mountpoint, rel) < 0) {
		d->dir = NULL;
		return vs_err(err, ENOMEM, "cgroup");
	}
	d->name = strdup(h->name);
	d->fstype = strdup(h->v2 ? "cgroup2" : "cgroup");
	d->options = strdup(h->options);
	d->mountpoint = strdup(h->mountpoint);
	d->v2 = h->v2;
	d->ctrls = h->ctrls;
	cg->n++;
	if (!d->name || !d->fstype || !d->options || !d->mountpoint)
		return vs_err(err, ENOMEM, "cgroup");
	d->created = missing_levels(h->mountpoint, rel, err);
	if (d->created < 0)
		return -1;
	/* a leaf someone else's processes live in is never ours: refuse it before it is
	 * recorded, so that no cleanup after a crash kills them */
	if (access(d->dir, F_OK) == 0) {
		cleanup_free char *procs = NULL;
		if (cg_read(d->dir, "cgroup.procs", &procs, err) < 0)
			return -1;
		if (*procs)
			return vs_err(err, EBUSY, "cgroup `%s` already has processes", d->dir);
	}
	return 0;
}

static int make_dir(struct cg_dir *d, bool delegate, vs_err_t *err)
{
	const char *rel = d->dir + strlen(d->mountpoint);
	/* a concurrent delete may remove a shared parent between our mkdirs: retry */
	int rc = -1;
	for (int attempt = 0; attempt < 5 && rc < 0; attempt++) {
		vs_err_t e = NULL;
		int created = 0;
		rc = make_dirs(d->mountpoint, rel, &created, &e);
		d->made = created > d->made ? created : d->made;
		if (rc < 0 && (e->errnum != ENOENT || attempt == 4))
			return cg_err_move(err, &e);
		vs_err_free(&e);
	}
	/* a pre-existing leaf is still the container's to remove at delete */
	d->created = d->made ? d->made : 1;
	if (!d->v2 && (d->ctrls & CG_BIT(CG_CPUSET)) && cpuset_fill(d->mountpoint, d->dir, err) < 0)
		return -1;
	if (d->v2 && delegate)
		v2_delegate(d->mountpoint, d->dir);
	return 0;
}

int cgroup_plan(const char *cgroups_path, const char *id, struct cgroup **out, vs_err_t *err)
{
	struct cg_layout *l = NULL;
	if (cg_layout_detect(&l, err) < 0)
		return vs_err_wrap(err, "cgroup");
	int rc = cg_plan_in(l, cgroups_path, id, out, err);
	cg_layout_free(l);
	return rc;
}

int cgroup_create(const char *cgroups_path, const char *id, struct cgroup **out, vs_err_t *err)
{
	if (cgroup_plan(cgroups_path, id, out, err) < 0)
		return -1;
	if (cgroup_make(*out, err) < 0) {
		cgroup_free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

int cg_create_in(const struct cg_layout *l, const char *cgroups_path, const char *id,
		 struct cgroup **out, vs_err_t *err)
{
	if (cg_plan_in(l, cgroups_path, id, out, err) < 0)
		return -1;
	if (cgroup_make(*out, err) < 0) {
		cgroup_free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

int cg_plan_in(const struct cg_layout *l, const char *cgroups_path, const char *id,
	       struct cgroup **out, vs_err_t *err)
{
	struct cgroup *cg = calloc(1, sizeof(*cg));
	if (!cg)
		return vs_err(err, ENOMEM, "cgroup");
	if (!(cg->path = container_path(cgroups_path, id, err)))
		goto fail;
	if (!(cg->d = calloc(l->n + 1, sizeof(*cg->d)))) {
		vs_err(err, ENOMEM, "cgroup");
		goto fail;
	}
	/* On a hybrid host the cgroup2 hierarchy only carries what v1 does not: switching
	 * its controllers on along our path would keep them in use after we are gone (and
	 * stop anyone from moving them to v1). A limit that needs one switches it on for
	 * itself and gives it back (cg_v2_enable). */
	cg->delegate = l->mode == CG_MODE_UNIFIED;
	for (size_t i = 0; i < l->n; i++)
		if (plan_dir(cg, &l->h[i], cg->path, err) < 0)
			goto fail;
	if (cg_finish(cg, err) < 0)
		goto fail;
	*out = cg;
	return 0;
fail:
	if (cg->path)
		vs_err_wrap(err, "cgroup %s", cg->path);
	cgroup_free(cg);
	return -1;
}

int cgroup_make(struct cgroup *cg, vs_err_t *err)
{
	for (size_t i = 0; i < cg->n; i++)
		if (make_dir(&cg->d[i], cg->delegate, err) < 0)
			goto undo;
	/* a container must start alone in its cgroup: a leaf we just made is empty, one that
	 * was there already may have gained processes since cgroup_plan looked */
	for (size_t i = 0; i < cg->n; i++) {
		if (cg->d[i].made > 0)
			continue;
		cleanup_free char *procs = NULL;
		if (cg_read(cg->d[i].dir, "cgroup.procs", &procs, err) < 0)
			goto undo;
		if (*procs) {
			vs_err(err, EBUSY, "cgroup `%s` already has processes", cg->d[i].dir);
			goto undo;
		}
	}
	vs_debug("cgroup: %s", cg->path);
	return 0;
undo:
	for (size_t i = 0; i < cg->n; i++) {
		vs_err_t e = NULL;
		struct cg_dir mine = cg->d[i];
		mine.created = mine.made;
		if (mine.made > 0 && remove_dirs(&mine, cg_now_ms() + RMDIR_WAIT_MS, &e) < 0)
			vs_warn("cgroup: cleanup: %s", e->msg);
		vs_err_free(&e);
		cg->d[i].made = 0;
	}
	return vs_err_wrap(err, "cgroup %s", cg->path);
}

void cgroup_forget(struct cgroup *cg)
{
	for (size_t i = 0; i < cg->n; i++) {
		struct cg_dir *d = &cg->d[i];
		free(d->name);
		free(d->dir);
		free(d->fstype);
		free(d->options);
		free(d->mountpoint);
		memset(d, 0, sizeof(*d));
	}
	cg->n = 0;
	if (cg->mounts)
		memset(cg->mounts, 0, sizeof(*cg->mounts));
}

int cgroup_enter(struct cgroup *cg, pid_t pid, vs_err_t *err)
{
	for (size_t i = 0; i < cg->n; i++)
		if (cg_writef(cg->d[i].dir, "cgroup.procs", err, "%d", (int)pid) < 0)
			return vs_err_wrap(err, "move pid %d into its cgroup", (int)pid);
	return 0;
}

int cgroup_enter_self(struct cgroup *cg, bool born_in_v2, vs_err_t *err)
{
	for (size_t i = 0; i < cg->n; i++) {
		if (cg->d[i].v2 && born_in_v2)
			continue;
		/* "0" is the caller itself: one thread, no threadgroup lock (see cgroup.h) */
		const char *file = cg->d[i].v2 ? "cgroup.procs" : "tasks";
		if (cg_writef(cg->d[i].dir, file, err, "0") < 0)
			return vs_err_wrap(err, "join the container's cgroup");
	}
	return 0;
}

int cgroup_v2_dir_fd(const struct cgroup *cg)
{
	for (size_t i = 0; i < cg->n; i++)
		if (cg->d[i].v2)
			return open(cg->d[i].dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return -1;
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

int cgroup_pids(struct cgroup *cg, pid_t **pids, size_t *n, vs_err_t *err)
{
	pid_t *all = NULL;
	size_t count = 0, cap = 0;
	for (size_t i = 0; i < cg->n; i++) {
		vs_err_t e = NULL;
		if (cg_read_procs(cg->d[i].dir, true, &all, &count, &cap, &e) < 0) {
			if (e->errnum == ENOENT) {
				vs_err_free(&e);
				continue;
			}
			free(all);
			return cg_err_move(err, &e);
		}
	}
	if (count)
		qsort(all, count, sizeof(*all), cmp_pid);
	size_t uniq = 0;
	for (size_t i = 0; i < count; i++)
		if (uniq == 0 || all[uniq - 1] != all[i])
			all[uniq++] = all[i];
	*pids = all;
	*n = uniq;
	return 0;
}

static int kill_all(struct cgroup *cg, vs_err_t *err)
{
	struct cg_dir *v2 = cg_dir_v2(cg);
	if (v2 && cg_file_exists(v2->dir, "cgroup.kill")) {
		/* one write kills every process, even those forking right now */
		if (cg_write(v2->dir, "cgroup.kill", "1", err) < 0)
			return -1;
	}
	struct cg_dir *fz = cg_dir_for(cg, CG_FREEZER);
	int64_t deadline = cg_now_ms() + KILL_WAIT_MS;
	for (;;) {
		pid_t *pids = NULL;
		size_t n = 0;
		if (cgroup_pids(cg, &pids, &n, err) < 0)
			return -1;
		if (n == 0) {
			free(pids);
			return 0;
		}
		/* without cgroup.kill, freeze first so that nothing forks past the walk */
		vs_err_t e = NULL;
		bool froze = fz && cg_freezer_write(fz, true, &e) == 0;
		vs_err_free(&e);
		for (size_t i = 0; i < n; i++)
			kill(pids[i], SIGKILL);
		free(pids);
		if (froze && cg_freezer_write(fz, false, &e) < 0)
			vs_err_free(&e);
		if (cg_now_ms() >= deadline)
			return vs_err(err, EBUSY, "processes of cgroup %s did not die", cg->path);
		usleep(2000);
	}
}

int cgroup_destroy(struct cgroup *cg, vs_err_t *err)
{
	if (kill_all(cg, err) < 0)
		return vs_err_wrap(err, "delete cgroup %s", cg->path);
	int64_t deadline = cg_now_ms() + RMDIR_WAIT_MS;
	int rc = 0;
	for (size_t i = 0; i < cg->n; i++) {
		if (remove_dirs(&cg->d[i], deadline, err) < 0)
			rc = -1; /* the first error is kept; the others are still removed */
		else
			cg_v2_give_back(&cg->d[i]);
	}
	if (rc < 0)
		vs_err_wrap(err, "delete cgroup %s", cg->path);
	return rc;
}
