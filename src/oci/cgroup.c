/* A container's cgroup: its directory in every hierarchy, from creation to removal. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "oci/cgroup_internal.h"

#define KILL_WAIT_MS 2000
#define RMDIR_WAIT_MS 2000
#define FREEZE_WAIT_MS 5000
#define MAX_DEPTH 64

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
	for (size_t i = 0; i < cg->n; i++) {
		struct cg_dir *d = &cg->d[i];
		free(d->name);
		free(d->dir);
		free(d->fstype);
		free(d->options);
		free(d->mountpoint);
	}
	free(cg->d);
	free(cg->mounts);
	free(cg->path);
	free(cg);
}

static int finish(struct cgroup *cg, vs_err_t *err)
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
		if (strcmp(c, "..") == 0 || ++depth > MAX_DEPTH) {
			free(out);
			vs_err(err, 0,
			       "linux.cgroupsPath: `%s` must not contain `..` or over %d levels",
			       cgroups_path, MAX_DEPTH);
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

static int add_dir(struct cgroup *cg, const struct cg_hier *h, const char *path, vs_err_t *err)
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
	/* a concurrent delete may remove a shared parent between our mkdirs: retry */
	int rc = -1;
	for (int attempt = 0; attempt < 5 && rc < 0; attempt++) {
		vs_err_t e = NULL;
		int created = 0;
		rc = make_dirs(h->mountpoint, rel, &created, &e);
		d->made = created > d->made ? created : d->made;
		if (rc < 0 && (e->errnum != ENOENT || attempt == 4))
			return cg_err_move(err, &e);
		vs_err_free(&e);
	}
	/* a pre-existing leaf is still the container's to remove at delete */
	d->created = d->made ? d->made : 1;
	if (!h->v2 && (h->ctrls & CG_BIT(CG_CPUSET)) && cpuset_fill(h->mountpoint, d->dir, err) < 0)
		return -1;
	if (h->v2)
		v2_delegate(h->mountpoint, d->dir);
	return 0;
}

int cgroup_create(const char *cgroups_path, const char *id, struct cgroup **out, vs_err_t *err)
{
	struct cg_layout *l = NULL;
	if (cg_layout_detect(&l, err) < 0)
		return vs_err_wrap(err, "cgroup");
	int rc = cg_create_in(l, cgroups_path, id, out, err);
	cg_layout_free(l);
	return rc;
}

int cg_create_in(const struct cg_layout *l, const char *cgroups_path, const char *id,
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
	for (size_t i = 0; i < l->n; i++)
		if (add_dir(cg, &l->h[i], cg->path, err) < 0)
			goto undo;
	/* a container must start alone in its cgroup */
	for (size_t i = 0; i < cg->n; i++) {
		cleanup_free char *procs = NULL;
		if (cg_read(cg->d[i].dir, "cgroup.procs", &procs, err) < 0)
			goto undo;
		if (*procs) {
			vs_err(err, EBUSY, "cgroup `%s` already has processes", cg->d[i].dir);
			goto undo;
		}
	}
	if (finish(cg, err) < 0)
		goto undo;
	vs_debug("cgroup: %s (%s layout)", cg->path, cg_mode_name(l->mode));
	*out = cg;
	return 0;
undo:
	for (size_t i = 0; i < cg->n; i++) {
		vs_err_t e = NULL;
		struct cg_dir mine = cg->d[i];
		mine.created = mine.made;
		if (mine.made > 0 && remove_dirs(&mine, cg_now_ms() + RMDIR_WAIT_MS, &e) < 0)
			vs_warn("cgroup: cleanup: %s", e->msg);
		vs_err_free(&e);
	}
fail:
	if (cg->path)
		vs_err_wrap(err, "cgroup %s", cg->path);
	cgroup_free(cg);
	return -1;
}

int cgroup_enter(struct cgroup *cg, pid_t pid, vs_err_t *err)
{
	for (size_t i = 0; i < cg->n; i++)
		if (cg_writef(cg->d[i].dir, "cgroup.procs", err, "%d", (int)pid) < 0)
			return vs_err_wrap(err, "move pid %d into its cgroup", (int)pid);
	return 0;
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

static struct cg_dir *freezer_dir(struct cgroup *cg)
{
	struct cg_dir *d = cg_dir_for(cg, CG_FREEZER);
	if (d)
		return d;
	d = cg_dir_v2(cg);
	return d && cg_file_exists(d->dir, "cgroup.freeze") ? d : NULL;
}

enum { THAWED, FROZEN, CHANGING };

static int freeze_state(struct cg_dir *d, vs_err_t *err)
{
	if (d->v2) {
		uint64_t v = 0;
		if (cg_read_key(d->dir, "cgroup.events", "frozen", &v) < 0)
			return vs_err(err, EIO, "read `%s/cgroup.events`", d->dir);
		return v == 1 ? FROZEN : THAWED;
	}
	cleanup_free char *state = NULL;
	if (cg_read(d->dir, "freezer.state", &state, err) < 0)
		return -1;
	if (vs_str_has_prefix(state, "FROZEN"))
		return FROZEN;
	return vs_str_has_prefix(state, "THAWED") ? THAWED : CHANGING;
}

static int write_freeze(struct cg_dir *d, bool frozen, vs_err_t *err)
{
	if (d->v2)
		return cg_write(d->dir, "cgroup.freeze", frozen ? "1" : "0", err);
	return cg_write(d->dir, "freezer.state", frozen ? "FROZEN" : "THAWED", err);
}

int cgroup_freeze(struct cgroup *cg, bool frozen, vs_err_t *err)
{
	struct cg_dir *d = freezer_dir(cg);
	if (!d)
		return vs_err(err, 0, "cannot %s: no freezer controller in any cgroup hierarchy",
			      frozen ? "pause" : "resume");
	int64_t deadline = cg_now_ms() + FREEZE_WAIT_MS;
	for (unsigned round = 0;; round++) {
		/* v1 can stay in FREEZING while tasks fork; writing FROZEN again retries them */
		if (round % 50 == 0 && write_freeze(d, frozen, err) < 0)
			return -1;
		int state = freeze_state(d, err);
		if (state < 0)
			return -1;
		if (state == (frozen ? FROZEN : THAWED))
			return 0;
		if (cg_now_ms() >= deadline)
			break;
		usleep(1000);
	}
	if (frozen) {
		vs_err_t e = NULL;
		write_freeze(d, false, &e);
		vs_err_free(&e);
	}
	return vs_err(err, ETIMEDOUT, "%s `%s`", frozen ? "freeze" : "thaw", d->dir);
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
		bool froze = fz && write_freeze(fz, true, &e) == 0;
		vs_err_free(&e);
		for (size_t i = 0; i < n; i++)
			kill(pids[i], SIGKILL);
		free(pids);
		if (froze && write_freeze(fz, false, &e) < 0)
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
	for (size_t i = 0; i < cg->n; i++)
		if (remove_dirs(&cg->d[i], deadline, err) < 0)
			rc = -1; /* the first error is kept; the others are still removed */
	if (rc < 0)
		vs_err_wrap(err, "delete cgroup %s", cg->path);
	return rc;
}

/* --- state.json --- */

json_t *cgroup_to_json(const struct cgroup *cg)
{
	json_t *dirs = json_array();
	for (size_t i = 0; dirs && i < cg->n; i++) {
		const struct cg_dir *d = &cg->d[i];
		json_t *ctrls = json_array();
		for (int c = 0; ctrls && c < CG_NCTRL; c++)
			if (d->ctrls & CG_BIT(c))
				json_array_append_new(ctrls, json_string(cg_ctrl_name(c)));
		json_array_append_new(dirs,
				      json_pack("{s:s, s:s, s:s, s:s, s:s, s:o*, s:i}", "name",
						d->name, "dir", d->dir, "fstype", d->fstype,
						"options", d->options, "mountpoint", d->mountpoint,
						"controllers", ctrls, "created", d->created));
	}
	return json_pack("{s:s, s:o*}", "path", cg->path, "dirs", dirs);
}

/* Absolute, and no ".." component: state.json must not steer rmdir elsewhere. */
static bool clean_abs_path(const char *p)
{
	if (p[0] != '/' || strlen(p) >= 4096)
		return false;
	for (const char *s = p; (s = strstr(s, "..")); s += 2)
		if (s[-1] == '/' && (s[2] == '/' || s[2] == '\0'))
			return false;
	return true;
}

static int dir_from_json(json_t *j, const char *jpath, struct cg_dir *d, vs_err_t *err)
{
	const char *name, *dir, *fstype, *options, *mnt;
	json_t *ctrls;
	int64_t created;
	if (!json_is_object(j))
		return vs_err(err, 0, "%s: must be an object", jpath);
	if (vjson_require(vjson_string(j, jpath, "name", &name, err), jpath, "name", "", err) < 0 ||
	    vjson_require(vjson_string(j, jpath, "dir", &dir, err), jpath, "dir", "", err) < 0 ||
	    vjson_require(vjson_string(j, jpath, "fstype", &fstype, err), jpath, "fstype", "",
			  err) < 0 ||
	    vjson_require(vjson_string(j, jpath, "options", &options, err), jpath, "options", "",
			  err) < 0 ||
	    vjson_require(vjson_string(j, jpath, "mountpoint", &mnt, err), jpath, "mountpoint", "",
			  err) < 0 ||
	    vjson_require(vjson_array(j, jpath, "controllers", &ctrls, err), jpath, "controllers",
			  "", err) < 0 ||
	    vjson_require(vjson_int_range(j, jpath, "created", 0, MAX_DEPTH, &created, err), jpath,
			  "created", "", err) < 0)
		return -1;
	/* destroy kills and rmdirs what this names: only directories inside a cgroup mount */
	size_t mlen = strlen(mnt);
	if (!clean_abs_path(dir) || !clean_abs_path(mnt) || strncmp(dir, mnt, mlen) != 0 ||
	    dir[mlen] != '/')
		return vs_err(err, 0, "%s.dir: `%s` is not a cgroup directory", jpath, dir);
	struct statfs fs;
	if (statfs(mnt, &fs) < 0 ||
	    (fs.f_type != CGROUP_SUPER_MAGIC && fs.f_type != CGROUP2_SUPER_MAGIC))
		return vs_err(err, 0, "%s.mountpoint: `%s` is not a cgroup mount", jpath, mnt);
	if (strcmp(fstype, "cgroup") != 0 && strcmp(fstype, "cgroup2") != 0)
		return vs_err(err, 0, "%s.fstype: must be \"cgroup\" or \"cgroup2\"", jpath);
	d->name = strdup(name);
	d->dir = strdup(dir);
	d->fstype = strdup(fstype);
	d->options = strdup(options);
	d->mountpoint = strdup(mnt);
	d->v2 = strcmp(fstype, "cgroup2") == 0;
	d->created = (int)created;
	if (!d->name || !d->dir || !d->fstype || !d->options || !d->mountpoint)
		return vs_err(err, ENOMEM, "%s", jpath);
	size_t i;
	json_t *c;
	json_array_foreach(ctrls, i, c)
	{
		int ctrl = json_is_string(c) ? cg_ctrl_from_name(json_string_value(c)) : -1;
		if (ctrl < 0)
			return vs_err(err, 0, "%s.controllers[%zu]: unknown controller", jpath, i);
		d->ctrls |= CG_BIT(ctrl);
	}
	return 0;
}

int cgroup_from_json(json_t *j, struct cgroup **out, vs_err_t *err)
{
	const char *path;
	json_t *dirs;
	if (!json_is_object(j))
		return vs_err(err, 0, "cgroup: must be an object");
	if (vjson_require(vjson_string(j, "cgroup", "path", &path, err), "cgroup", "path", "",
			  err) < 0 ||
	    vjson_require(vjson_array(j, "cgroup", "dirs", &dirs, err), "cgroup", "dirs", "", err) <
		0)
		return -1;
	if (!clean_abs_path(path))
		return vs_err(err, 0, "cgroup.path: `%s` is not a cgroup path", path);
	if (json_array_size(dirs) > 64)
		return vs_err(err, 0, "cgroup.dirs: too many hierarchies");
	struct cgroup *cg = calloc(1, sizeof(*cg));
	if (!cg || !(cg->path = strdup(path)) ||
	    !(cg->d = calloc(json_array_size(dirs) + 1, sizeof(*cg->d)))) {
		cgroup_free(cg);
		return vs_err(err, ENOMEM, "cgroup");
	}
	for (size_t i = 0; i < json_array_size(dirs); i++) {
		char jpath[48];
		snprintf(jpath, sizeof(jpath), "cgroup.dirs[%zu]", i);
		cg->n++;
		if (dir_from_json(json_array_get(dirs, i), jpath, &cg->d[i], err) < 0) {
			cgroup_free(cg);
			return -1;
		}
	}
	if (finish(cg, err) < 0) {
		cgroup_free(cg);
		return -1;
	}
	*out = cg;
	return 0;
}
