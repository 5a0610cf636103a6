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
#include "base/proc.h"
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

static int lock_fd(int fd, const char *dir, vs_err_t *err)
{
	/* serialises create/start/kill/delete of one container across vessel processes */
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return vs_err(err, errno, "lock `%s`", dir);
	return 0;
}

static int init_names(const struct vs_globals *g, const char *id, struct container_state *st,
		      vs_err_t *err)
{
	st->dir_fd = -1;
	st->garbled = false;
	if (state_check_id(id, err) < 0)
		return -1;
	free(st->id);
	free(st->dir);
	st->id = strdup(id);
	st->dir = NULL;
	if (!st->id || asprintf(&st->dir, "%s/%s", g->root, id) < 0)
		return vs_err(err, ENOMEM, "state");
	return 0;
}

/* Removes a directory's files (state.json, the exec fifo, a temporary) and itself. */
static int remove_dir(int parent_fd, const char *name, int dir_fd)
{
	DIR *d = fdopendir(dup(dir_fd));
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				unlinkat(dir_fd, e->d_name, 0);
		closedir(d);
	}
	return unlinkat(parent_fd, name, AT_REMOVEDIR);
}

/* The temporary directory's name is its creator, so a sweep knows when it is dead:
 * ".new-PID-STARTTIME" (not the id: that may already be as long as a name can be). */
#define UNNAMED_PREFIX ".new-"

int state_check_free(const struct vs_globals *g, const char *id, vs_err_t *err)
{
	cleanup_free char *dir = NULL;
	if (asprintf(&dir, "%s/%s", g->root, id) < 0)
		return vs_err(err, ENOMEM, "state");
	if (access(dir, F_OK) == 0)
		return vs_err(err, 0, "container `%s` already exists", id);
	return 0;
}

int state_create(const struct vs_globals *g, const char *id, struct container_state *st,
		 vs_err_t *err)
{
	if (init_names(g, id, st, err) < 0)
		return -1;
	if (vs_mkdir_p(g->root, 0700, err) < 0)
		return vs_err_wrap(err, "state root");
	cleanup_close int root_fd = open(g->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0)
		return vs_err(err, errno, "open the state root `%s`", g->root);
	if (faccessat(root_fd, id, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return vs_err(err, 0, "container `%s` already exists", id);
	char tmp[64];
	snprintf(tmp, sizeof(tmp), UNNAMED_PREFIX "%d-%llu", (int)st->runtime_pid,
		 (unsigned long long)st->runtime_start_time);
	if (mkdirat(root_fd, tmp, 0700) < 0)
		return vs_err(err, errno, "mkdir `%s/%s`", g->root, tmp);
	st->dir_fd = openat(root_fd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->dir_fd < 0) {
		int e = errno;
		unlinkat(root_fd, tmp, AT_REMOVEDIR);
		return vs_err(err, e, "open `%s/%s`", g->root, tmp);
	}
	/* the lock and the record go in first: the rename makes both appear at once, so
	 * delete, state and list never see a directory without them */
	if (lock_fd(st->dir_fd, st->dir, err) < 0 || state_save(st, err) < 0)
		goto fail;
	if (renameat2(root_fd, tmp, root_fd, id, RENAME_NOREPLACE) < 0) {
		if (errno == EEXIST)
			vs_err(err, 0, "container `%s` already exists", id);
		else
			vs_err(err, errno, "rename `%s/%s` to `%s`", g->root, tmp, st->dir);
		goto fail;
	}
	return 0;
fail:
	remove_dir(root_fd, tmp, st->dir_fd);
	close(st->dir_fd);
	st->dir_fd = -1;
	return -1;
}

void state_sweep_unnamed(const struct vs_globals *g)
{
	cleanup_close int root_fd = open(g->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0)
		return;
	DIR *d = fdopendir(dup(root_fd));
	if (!d)
		return;
	size_t plen = strlen(UNNAMED_PREFIX);
	struct dirent *e;
	while ((e = readdir(d))) {
		const char *n = e->d_name;
		int pid = 0, used = 0;
		unsigned long long start = 0;
		if (strncmp(n, UNNAMED_PREFIX, plen) ||
		    sscanf(n + plen, "%d-%llu%n", &pid, &start, &used) != 2 ||
		    n[plen + (size_t)used] != '\0' || proc_alive(pid, start))
			continue;
		int fd = openat(root_fd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0) {
			remove_dir(root_fd, n, fd);
			close(fd);
		}
	}
	closedir(d);
}

static json_t *not_null(json_t *j)
{
	return j && !json_is_null(j) ? json_incref(j) : NULL;
}

static int str_field(json_t *j, const char *key, bool required, char **out, vs_err_t *err)
{
	const char *s = NULL;
	int rc = vjson_string(j, "state.json", key, &s, err);
	if (rc < 0 || (required && vjson_require(rc, "state.json", key, "", err) < 0))
		return -1;
	if (s && !(*out = strdup(s)))
		return vs_err(err, ENOMEM, "state.json");
	return 0;
}

/* null, or a value of the given type that a later command hands on */
static int opt_object(json_t *j, const char *key, json_t **out, vs_err_t *err)
{
	json_t *v = json_object_get(j, key);
	if (v && !json_is_null(v) && !json_is_object(v))
		return vs_err(err, 0, "state.json.%s: must be an object or null", key);
	*out = not_null(v);
	return 0;
}

/* PID_MAX_LIMIT of the kernel: 2^22 */
#define MAX_PID 4194304

int state_parse(json_t *j, struct container_state *st, vs_err_t *err)
{
	if (!json_is_object(j))
		return vs_err(err, 0, "state.json: must be an object");
	const char *id = NULL, *phase = "created";
	int64_t pid = 0, start = 0, rpid = 0, rstart = 0, owner = 0;
	bool paused = false;
	if (vjson_string(j, "state.json", "id", &id, err) < 0 ||
	    vjson_string(j, "state.json", "phase", &phase, err) < 0 ||
	    vjson_int_range(j, "state.json", "pid", 0, MAX_PID, &pid, err) < 0 ||
	    vjson_int_range(j, "state.json", "start_time", 0, INT64_MAX, &start, err) < 0 ||
	    vjson_int_range(j, "state.json", "runtime_pid", 0, MAX_PID, &rpid, err) < 0 ||
	    vjson_int_range(j, "state.json", "runtime_start_time", 0, INT64_MAX, &rstart, err) <
		0 ||
	    vjson_int_range(j, "state.json", "owner", 0, UINT32_MAX - 1, &owner, err) < 0 ||
	    vjson_bool(j, "state.json", "paused", &paused, err) < 0 ||
	    str_field(j, "bundle", true, &st->bundle, err) < 0 ||
	    str_field(j, "rootfs", false, &st->rootfs, err) < 0 ||
	    str_field(j, "created", false, &st->created, err) < 0 ||
	    opt_object(j, "annotations", &st->annotations, err) < 0 ||
	    opt_object(j, "hooks", &st->hooks, err) < 0 ||
	    opt_object(j, "cgroup", &st->cgroup, err) < 0)
		return -1;
	/* a record copied from another container's directory would steer delete there */
	if (id && st->id && strcmp(id, st->id) != 0)
		return vs_err(err, 0, "state.json.id: `%s` is not this container's id", id);
	if (strcmp(phase, "creating") == 0)
		st->phase = PHASE_CREATING;
	else if (strcmp(phase, "created") == 0)
		st->phase = PHASE_CREATED;
	else
		return vs_err(err, 0, "state.json.phase: must be \"creating\" or \"created\"");
	if (st->phase == PHASE_CREATED && (pid == 0 || start == 0))
		return vs_err(err, 0, "state.json: a created container needs its pid and start_time");
	if (st->phase == PHASE_CREATING && (rpid == 0 || rstart == 0))
		return vs_err(err, 0, "state.json: a container being created needs its "
				      "runtime_pid and runtime_start_time");
	if ((pid == 0) != (start == 0))
		return vs_err(err, 0, "state.json: pid and start_time go together");
	st->pid = (pid_t)pid;
	st->start_time = (uint64_t)start;
	st->runtime_pid = (pid_t)rpid;
	st->runtime_start_time = (uint64_t)rstart;
	st->owner = (uid_t)owner;
	st->paused = paused;
	return 0;
}

int state_load(const struct vs_globals *g, const char *id, bool lock, struct container_state *st,
	       vs_err_t *err)
{
	memset(st, 0, sizeof(*st));
	if (init_names(g, id, st, err) < 0)
		return -1;
	st->dir_fd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->dir_fd < 0) {
		if (errno == ENOENT)
			return vs_err(err, 0, "container `%s` does not exist", id);
		return vs_err(err, errno, "open `%s`", st->dir);
	}
	if (lock && lock_fd(st->dir_fd, st->dir, err) < 0)
		return -1;
	/* from here on the directory exists: whatever is wrong is the record */
	st->garbled = true;
	cleanup_free char *text = NULL;
	size_t len = 0;
	if (vs_read_file_at(st->dir_fd, "state.json", 1 << 20, &text, &len, err) < 0)
		return vs_err_wrap(err, "container `%s`: its state record", id);
	json_error_t je;
	json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		return vs_err(err, 0, "container `%s`: its state record `%s/state.json`: line %d: %s",
			      id, st->dir, je.line, je.text);
	int rc = state_parse(j, st, err);
	json_decref(j);
	if (rc < 0)
		return vs_err_wrap(err, "container `%s`: its state record `%s/state.json`", id,
				   st->dir);
	st->garbled = false;
	return 0;
}

static json_t *maybe(json_t *j)
{
	return j ? json_incref(j) : json_null();
}

int state_save(struct container_state *st, vs_err_t *err)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:s, s:s, s:I, s:b, s:o, "
			      "s:o, s:o}",
			      "ociVersion", "1.2.0", "id", st->id, "phase",
			      st->phase == PHASE_CREATING ? "creating" : "created", "runtime_pid",
			      (json_int_t)st->runtime_pid, "runtime_start_time",
			      (json_int_t)st->runtime_start_time, "pid", (json_int_t)st->pid,
			      "start_time", (json_int_t)st->start_time, "bundle",
			      st->bundle ? st->bundle : "", "rootfs", st->rootfs ? st->rootfs : "",
			      "created", st->created ? st->created : "", "owner",
			      (json_int_t)st->owner, "paused", st->paused, "annotations",
			      maybe(st->annotations), "hooks", maybe(st->hooks), "cgroup",
			      maybe(st->cgroup));
	if (!j)
		return vs_err(err, ENOMEM, "state.json");
	char *text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!text)
		return vs_err(err, ENOMEM, "state.json");
	/* write-then-rename: a reader never sees half a state file. Exchanged, not renamed
	 * over: on ext4 a rename that replaces a file allocates the new one's blocks at once
	 * (auto_da_alloc), and freeing those at the next save or at delete waits for a
	 * discard where the file system is mounted -o discard without a journal (1-2 ms
	 * each on the development host). A record unlinked before writeback never had
	 * blocks to free. */
	int rc = vs_write_file_at(st->dir_fd, "state.json.tmp", text, strlen(text), err);
	free(text);
	if (rc < 0)
		return -1;
	if (renameat2(st->dir_fd, "state.json.tmp", st->dir_fd, "state.json", RENAME_EXCHANGE) == 0) {
		unlinkat(st->dir_fd, "state.json.tmp", 0);
		return 0;
	}
	/* the first record, or a file system without RENAME_EXCHANGE */
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

enum container_status state_status(const struct container_state *st)
{
	/* a create that died left a container that never ran: stopped, for delete */
	if (st->phase == PHASE_CREATING)
		return proc_alive(st->runtime_pid, st->runtime_start_time) ? STATUS_CREATING
										   : STATUS_STOPPED;
	if (!proc_alive(st->pid, st->start_time))
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
