/* Reading and writing cgroup files, and removing cgroup directory trees. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "sandbox/cgroup_internal.h"

int64_t cg_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cg_err_move(vs_err_t *err, vs_err_t *e)
{
	if (err && !*err) {
		*err = *e;
		*e = NULL;
	}
	vs_err_free(e);
	return -1;
}

int cg_write(const char *dir, const char *file, const char *value, vs_err_t *err)
{
	cleanup_free char *path = NULL;
	if (asprintf(&path, "%s/%s", dir, file) < 0)
		return vs_err(err, ENOMEM, "write `%s`", file);
	/* no O_CREAT: a missing file means a missing controller, never a new file */
	cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return vs_err(err, errno, "open `%s`", path);
	size_t len = strlen(value);
	ssize_t n;
	do
		n = write(fd, value, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return vs_err(err, errno, "write `%s` to `%s`", value, path);
	if ((size_t)n != len)
		return vs_err(err, EIO, "short write of `%s` to `%s`", value, path);
	return 0;
}

int cg_writef(const char *dir, const char *file, vs_err_t *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *value = NULL;
	int rc = vasprintf(&value, fmt, ap);
	va_end(ap);
	if (rc < 0)
		return vs_err(err, ENOMEM, "write `%s`", file);
	rc = cg_write(dir, file, value, err);
	free(value);
	return rc;
}

int cg_set(const char *dir, const char *file, const char *rpath, const char *field, vs_err_t *err,
	   const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *value = NULL;
	int rc = vasprintf(&value, fmt, ap);
	va_end(ap);
	if (rc < 0)
		return vs_err(err, ENOMEM, "%s.%s", rpath, field);
	rc = cg_write(dir, file, value, err);
	free(value);
	if (rc < 0)
		vs_err_wrap(err, "%s.%s", rpath, field);
	return rc;
}

int cg_read(const char *dir, const char *file, char **out, vs_err_t *err)
{
	cleanup_free char *path = NULL;
	if (asprintf(&path, "%s/%s", dir, file) < 0)
		return vs_err(err, ENOMEM, "read `%s`", file);
	return vs_read_file(path, 1 << 20, out, NULL, err);
}

int cg_read_u64(const char *dir, const char *file, uint64_t *out, vs_err_t *err)
{
	cleanup_free char *text = NULL;
	if (cg_read(dir, file, &text, err) < 0)
		return -1;
	if (strncmp(text, "max", 3) == 0) {
		*out = UINT64_MAX;
		return 0;
	}
	char *end;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno || end == text)
		return vs_err(err, EINVAL, "%s/%s: not a number", dir, file);
	*out = v;
	return 0;
}

int cg_read_key(const char *dir, const char *file, const char *key, uint64_t *out)
{
	cleanup_free char *text = NULL;
	vs_err_t ignored = NULL;
	if (cg_read(dir, file, &text, &ignored) < 0) {
		vs_err_free(&ignored);
		return -1;
	}
	size_t klen = strlen(key);
	for (char *line = text; line && *line;) {
		char *next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (strncmp(line, key, klen) == 0 && line[klen] == ' ') {
			*out = strtoull(line + klen + 1, NULL, 10);
			return 0;
		}
		line = next;
	}
	return -1;
}

bool cg_file_exists(const char *dir, const char *file)
{
	cleanup_free char *path = NULL;
	if (asprintf(&path, "%s/%s", dir, file) < 0)
		return false;
	return access(path, F_OK) == 0;
}

static int push_pid(pid_t pid, pid_t **pids, size_t *n, size_t *cap)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		pid_t *np = realloc(*pids, ncap * sizeof(*np));
		if (!np)
			return -1;
		*pids = np;
		*cap = ncap;
	}
	(*pids)[(*n)++] = pid;
	return 0;
}

int cg_read_procs(const char *dir, bool recursive, pid_t **pids, size_t *n, size_t *cap,
		  vs_err_t *err)
{
	cleanup_free char *text = NULL;
	if (cg_read(dir, "cgroup.procs", &text, err) < 0)
		return -1;
	for (char *p = text; *p;) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p)
			break;
		if (v > 0 && push_pid((pid_t)v, pids, n, cap) < 0)
			return vs_err(err, ENOMEM, "cgroup.procs");
		p = end;
		while (*p == '\n')
			p++;
	}
	if (!recursive)
		return 0;
	DIR *d = opendir(dir);
	if (!d)
		return vs_err(err, errno, "opendir `%s`", dir);
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(d))) {
		if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 ||
		    strcmp(e->d_name, "..") == 0)
			continue;
		cleanup_free char *sub = NULL;
		if (asprintf(&sub, "%s/%s", dir, e->d_name) < 0)
			rc = vs_err(err, ENOMEM, "cgroup.procs");
		else
			rc = cg_read_procs(sub, true, pids, n, cap, err);
	}
	closedir(d);
	return rc;
}

static int rmdir_retry(const char *dir, int64_t deadline_ms, vs_err_t *err)
{
	for (;;) {
		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		/* the last tasks of a killed cgroup leave it a moment after they die */
		if (errno != EBUSY || cg_now_ms() >= deadline_ms)
			return vs_err(err, errno, "rmdir `%s`", dir);
		usleep(5000);
	}
}

int cg_rmdir_tree(const char *dir, int64_t deadline_ms, vs_err_t *err)
{
	DIR *d = opendir(dir);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		return vs_err(err, errno, "opendir `%s`", dir);
	}
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(d))) {
		if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 ||
		    strcmp(e->d_name, "..") == 0)
			continue;
		cleanup_free char *sub = NULL;
		if (asprintf(&sub, "%s/%s", dir, e->d_name) < 0)
			rc = vs_err(err, ENOMEM, "rmdir `%s`", dir);
		else
			rc = cg_rmdir_tree(sub, deadline_ms, err);
	}
	closedir(d);
	if (rc < 0)
		return -1;
	return rmdir_retry(dir, deadline_ms, err);
}
