#include "oci/state.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/json.h"
#include "base/util.h"

int state_check_id(const char *id, vs_err_t *err)
{
	size_t n = strlen(id);
	if (n == 0 || n > 1024)
		return vs_err(err, 0, "invalid container id `%s`: must be 1 to 1024 characters", id);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)id[i];
		if (!isalnum(c) && !strchr("_+-.", c))
			return vs_err(err, 0,
				      "invalid container id `%s`: only letters, digits and _+-. "
				      "are allowed",
				      id);
	}
	if (strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
		return vs_err(err, 0, "invalid container id `%s`", id);
	return 0;
}

int state_unlock(struct container_state *st)
{
	return flock(st->dir_fd, LOCK_UN);
}

int state_lock(struct container_state *st, vs_err_t *err)
{
	while (flock(st->dir_fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return vs_err(err, errno, "lock `%s`", st->dir);
	return 0;
}

static int lock_dir(struct container_state *st, vs_err_t *err)
{
	st->dir_fd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->dir_fd < 0)
		return vs_err(err, errno, "open `%s`", st->dir);
	/* serialises start/kill/delete of one container across vessel processes */
	while (flock(st->dir_fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return vs_err(err, errno, "lock `%s`", st->dir);
	return 0;
}

static int init_names(const struct vs_globals *g, const char *id, struct container_state *st,
		      vs_err_t *err)
{
	memset(st, 0, sizeof(*st));
	st->dir_fd = -1;
	if (state_check_id(id, err) < 0)
		return -1;
	st->id = strdup(id);
	if (!st->id || asprintf(&st->dir, "%s/%s", g->root, id) < 0)
		return vs_err(err, ENOMEM, "state");
	return 0;
}

int state_create_dir(const struct vs_globals *g, const char *id, struct container_state *st,
		     vs_err_t *err)
{
	if (init_names(g, id, st, err) < 0)
		return -1;
	if (vs_mkdir_p(g->root, 0700, err) < 0)
		return vs_err_wrap(err, "state root");
	if (mkdir(st->dir, 0700) < 0) {
		if (errno == EEXIST)
			return vs_err(err, 0, "container `%s` already exists", id);
		return vs_err(err, errno, "mkdir `%s`", st->dir);
	}
	if (lock_dir(st, err) < 0) {
		rmdir(st->dir);
		return -1;
	}
	return 0;
}

static json_t *not_null(json_t *j)
{
	return j && !json_is_null(j) ? json_incref(j) : NULL;
}

static int str_field(json_t *j, const char *key, char **out, vs_err_t *err)
{
	const char *s = NULL;
	if (vjson_string(j, "state.json", key, &s, err) < 0)
		return -1;
	if (s && !(*out = strdup(s)))
		return vs_err(err, ENOMEM, "state.json");
	return 0;
}

int state_load(const struct vs_globals *g, const char *id, bool lock, struct container_state *st,
	       vs_err_t *err)
{
	if (init_names(g, id, st, err) < 0)
		return -1;
	st->dir_fd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->dir_fd < 0) {
		if (errno == ENOENT)
			return vs_err(err, 0, "container `%s` does not exist", id);
		return vs_err(err, errno, "open `%s`", st->dir);
	}
	if (lock) {
		close(st->dir_fd);
		if (lock_dir(st, err) < 0)
			return -1;
	}
	cleanup_free char *path = NULL;
	if (asprintf(&path, "%s/state.json", st->dir) < 0)
		return vs_err(err, ENOMEM, "state");
	if (access(path, F_OK) < 0 && errno == ENOENT)
		/* a create still under way, or one that died before writing its state */
		return vs_err(err, 0, "container `%s` does not exist (no state yet)", id);
	json_t *j = vjson_load_file(path, 1 << 20, err);
	if (!j)
		return -1;
	int64_t pid = 0, start = 0, owner = 0;
	bool paused = false;
	int rc = 0;
	if (vjson_int64(j, "state.json", "pid", &pid, err) < 0 ||
	    vjson_int64(j, "state.json", "start_time", &start, err) < 0 ||
	    vjson_int64(j, "state.json", "owner", &owner, err) < 0 ||
	    vjson_bool(j, "state.json", "paused", &paused, err) < 0 ||
	    str_field(j, "bundle", &st->bundle, err) < 0 ||
	    str_field(j, "rootfs", &st->rootfs, err) < 0 ||
	    str_field(j, "created", &st->created, err) < 0)
		rc = -1;
	st->pid = (pid_t)pid;
	st->start_time = (uint64_t)start;
	st->owner = (uid_t)owner;
	st->paused = paused;
	st->annotations = not_null(json_object_get(j, "annotations"));
	st->hooks = not_null(json_object_get(j, "hooks"));
	st->cgroup = not_null(json_object_get(j, "cgroup"));
	json_decref(j);
	return rc;
}

static json_t *maybe(json_t *j)
{
	return j ? json_incref(j) : json_null();
}

int state_save(struct container_state *st, vs_err_t *err)
{
	json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:I, s:b, s:o, s:o, s:o}",
			      "ociVersion", "1.2.0", "id", st->id, "pid", (json_int_t)st->pid,
			      "start_time", (json_int_t)st->start_time, "bundle",
			      st->bundle ? st->bundle : "", "rootfs", st->rootfs ? st->rootfs : "",
			      "created", st->created ? st->created : "", "owner",
			      (json_int_t)st->owner, "paused", st->paused, "annotations", maybe(st->annotations), "hooks", maybe(st->hooks),
			      "cgroup", maybe(st->cgroup));
	if (!j)
		return vs_err(err, ENOMEM, "state.json");
	char *text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!text)
		return vs_err(err, ENOMEM, "state.json");
	/* write-then-rename: a reader never sees half a state file */
	int rc = vs_write_file_at(st->dir_fd, "state.json.tmp", text, strlen(text), err);
	free(text);
	if (rc < 0)
		return -1;
	if (renameat(st->dir_fd, "state.json.tmp", st->dir_fd, "state.json") < 0)
		return vs_err(err, errno, "rename state.json in `%s`", st->dir);
	return 0;
}

int state_remove(struct container_state *st, vs_err_t *err)
{
	DIR *d = fdopendir(dup(st->dir_fd));
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				unlinkat(st->dir_fd, e->d_name, 0);
		closedir(d);
	}
	if (rmdir(st->dir) < 0 && errno != ENOENT)
		return vs_err(err, errno, "remove `%s`", st->dir);
	return 0;
}

void state_release(struct container_state *st)
{
	if (st->dir_fd >= 0)
		close(st->dir_fd);
	free(st->id);
	free(st->dir);
	free(st->bundle);
	free(st->rootfs);
	free(st->created);
	json_decref(st->annotations);
	json_decref(st->hooks);
	json_decref(st->cgroup);
	memset(st, 0, sizeof(*st));
	st->dir_fd = -1;
}

uint64_t state_proc_start_time(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: count fields after the last ')' */
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	char state = p[2];
	if (state == 'Z' || state == 'X')
		return 0;
	p += 2;
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	return p ? strtoull(p, NULL, 10) : 0;
}

bool state_proc_alive(pid_t pid, uint64_t start_time)
{
	if (pid <= 0)
		return false;
	uint64_t now = state_proc_start_time(pid);
	return now != 0 && now == start_time;
}

enum container_status state_status(const struct container_state *st)
{
	if (!state_proc_alive(st->pid, st->start_time))
		return STATUS_STOPPED;
	if (faccessat(st->dir_fd, STATE_EXEC_FIFO, F_OK, 0) == 0)
		return STATUS_CREATED;
	if (st->paused)
		return STATUS_PAUSED;
	return STATUS_RUNNING;
}

const char *state_status_name(enum container_status s)
{
	static const char *const names[] = {"creating", "created", "running", "paused",
					    "stopped"};
	return names[s];
}

json_t *state_to_oci_json(const struct container_state *st, enum container_status status)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "ociVersion", "1.2.0", "id", st->id,
			      "status", state_status_name(status), "bundle",
			      st->bundle ? st->bundle : "");
	if (!j)
		return NULL;
	if (status != STATUS_STOPPED)
		json_object_set_new(j, "pid", json_integer(st->pid));
	else
		json_object_set_new(j, "pid", json_integer(0));
	json_object_set_new(j, "annotations",
			    st->annotations ? json_incref(st->annotations) : json_object());
	return j;
}
