#include "oci/lifecycle.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/proc.h"
#include "base/util.h"
#include "oci/hooks.h"
#include "sandbox/sandbox.h"

int lifecycle_parse_signal(const char *s, int *sig, vs_err_t *err)
{
	if (isdigit((unsigned char)s[0])) {
		char *end;
		long v = strtol(s, &end, 10);
		if (*end || v <= 0 || v > SIGRTMAX)
			return vs_err(err, 0, "invalid signal `%s`", s);
		*sig = (int)v;
		return 0;
	}
	const char *name = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
	for (int i = 1; i < NSIG; i++) {
		const char *abbrev = sigabbrev_np(i);
		if (abbrev && strcasecmp(abbrev, name) == 0) {
			*sig = i;
			return 0;
		}
	}
	if (strncasecmp(name, "RTMIN+", 6) == 0 || strncasecmp(name, "RTMAX-", 6) == 0) {
		char *end;
		long off = strtol(name + 6, &end, 10);
		int v = toupper((unsigned char)name[3]) == 'I' ? SIGRTMIN + (int)off
							       : SIGRTMAX - (int)off;
		if (!*end && off >= 0 && v >= SIGRTMIN && v <= SIGRTMAX) {
			*sig = v;
			return 0;
		}
	}
	return vs_err(err, 0, "invalid signal `%s`", s);
}

bool lifecycle_wait_gone(const struct container_state *st, int timeout_ms)
{
	struct timespec d = {0, 1000000};
	for (int waited = 0; waited < timeout_ms; waited++) {
		if (!proc_alive(st->pid, st->start_time))
			return true;
		nanosleep(&d, NULL);
	}
	return !proc_alive(st->pid, st->start_time);
}

int lifecycle_kill_init(const struct container_state *st, int timeout_ms, vs_err_t *err)
{
	if (st->pid <= 0)
		return 0;
	/* a pidfd taken before the start time is checked cannot be a recycled pid's */
	int fd = (int)syscall(SYS_pidfd_open, st->pid, 0);
	if (fd < 0)
		return 0; /* gone */
	if (proc_alive(st->pid, st->start_time))
		syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0);
	close(fd);
	if (!lifecycle_wait_gone(st, timeout_ms))
		return vs_err(err, 0, "container `%s` did not die after SIGKILL", st->id);
	return 0;
}

static bool same_file(const char *path, const struct stat *b)
{
	struct stat a;
	return stat(path, &a) == 0 && a.st_ino == b->st_ino && a.st_dev == b->st_dev;
}

/* Without a cgroup, a pid namespace of the container's own is what holds its processes
 * together; /proc lists them all, ours first. */
static int pid_namespace_pids(const struct container_state *st, pid_t **pids, size_t *n,
			      vs_err_t *err)
{
	*pids = NULL;
	*n = 0;
	if (!proc_alive(st->pid, st->start_time))
		return 0;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", st->pid);
	struct stat ns;
	if (stat(path, &ns) < 0)
		return vs_err(err, errno, "the pid namespace of container `%s`", st->id);
	size_t cap = 16;
	*pids = malloc(cap * sizeof(**pids));
	if (!*pids)
		return vs_err(err, ENOMEM, "pids");
	if (same_file("/proc/self/ns/pid", &ns)) {
		(*pids)[(*n)++] = st->pid;
		return 0;
	}
	DIR *d = opendir("/proc");
	if (!d)
		return vs_err(err, errno, "open /proc");
	struct dirent *e;
	while ((e = readdir(d))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/ns/pid", pid);
		if (!same_file(path, &ns))
			continue;
		if (*n == cap) {
			pid_t *more = realloc(*pids, 2 * cap * sizeof(**pids));
			if (!more) {
				closedir(d);
				return vs_err(err, ENOMEM, "pids");
			}
			*pids = more;
			cap *= 2;
		}
		(*pids)[(*n)++] = (pid_t)pid;
	}
	closedir(d);
	return 0;
}

int lifecycle_pids(const struct container_state *st, struct cgroup *cg, pid_t **pids,
		   size_t *n, vs_err_t *err)
{
	const struct cgroup_mount *m;
	if (cgroup_mounts(cg, &m) > 0)
		return cgroup_pids(cg, pids, n, err);
	return pid_namespace_pids(st, pids, n, err);
}

int lifecycle_destroy(struct container_state *st, vs_err_t *err)
{
	if (st->cgroup) {
		struct cgroup *cg = NULL;
		if (cgroup_from_json(st->cgroup, &cg, err) < 0 || cgroup_destroy(cg, err) < 0) {
			cgroup_free(cg);
			return vs_err_wrap(err, "delete container `%s`", st->id);
		}
		cgroup_free(cg);
	}
	if (st->hooks) {
		json_t *s = state_to_oci_json(st, STATUS_STOPPED);
		vs_err_t herr = NULL;
		/* the container is gone already: a failing poststop hook cannot undo that */
		if (hooks_run_json(st->hooks, HOOK_POSTSTOP, s, &herr) < 0) {
			vs_warn("%s", herr->msg);
			vs_err_free(&herr);
		}
		json_decref(s);
	}
	return state_remove(st, err);
}
