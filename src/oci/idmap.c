#include "oci/idmap.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"

int idmap_write(pid_t pid, const char *file, const struct spec_id_mapping *m, size_t n,
		vs_err_t *err)
{
	if (!n)
		return 0;
	char buf[340 * 36];
	size_t used = 0;
	for (size_t i = 0; i < n && i < 340; i++)
		used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%u %u %u\n",
					 m[i].container_id, m[i].host_id, m[i].size);
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
	/* one write: the kernel takes the whole map at once or not at all */
	return vs_write_file(path, buf, used, err);
}

static bool own_id_only(const struct spec_id_mapping *m, size_t n, unsigned own)
{
	return n == 1 && m[0].size == 1 && m[0].host_id == own;
}

/* Runs newuidmap or newgidmap PID INSIDE OUTSIDE SIZE...; its complaint becomes ours. */
static int run_helper(const char *helper, pid_t pid, const struct spec_id_mapping *m, size_t n,
		      vs_err_t *err)
{
	enum { MAX_MAPS = 340 };
	char args[1 + 3 * MAX_MAPS][16];
	char *argv[3 + 3 * MAX_MAPS];
	size_t argc = 0;
	argv[argc++] = (char *)helper;
	snprintf(args[0], sizeof(args[0]), "%d", pid);
	argv[argc++] = args[0];
	for (size_t i = 0; i < n && i < MAX_MAPS; i++) {
		unsigned v[3] = {m[i].container_id, m[i].host_id, m[i].size};
		for (int k = 0; k < 3; k++) {
			snprintf(args[1 + 3 * i + k], sizeof(args[0]), "%u", v[k]);
			argv[argc++] = args[1 + 3 * i + k];
		}
	}
	argv[argc] = NULL;
	int out[2];
	if (pipe2(out, O_CLOEXEC) < 0)
		return vs_err(err, errno, "pipe");
	pid_t child = fork();
	if (child == 0) {
		dup2(out[1], 1);
		dup2(out[1], 2);
		execvp(helper, argv);
		dprintf(2, "%s", strerror(errno));
		_exit(errno == ENOENT ? 126 : 127);
	}
	close(out[1]);
	if (child < 0) {
		close(out[0]);
		return vs_err(err, errno, "fork for %s", helper);
	}
	char said[512];
	size_t used = 0;
	ssize_t r;
	while (used < sizeof(said) - 1 &&
	       ((r = read(out[0], said + used, sizeof(said) - 1 - used)) > 0 ||
		(r < 0 && errno == EINTR)))
		used += r > 0 ? (size_t)r : 0;
	close(out[0]);
	said[used] = '\0';
	if (used && said[used - 1] == '\n')
		said[used - 1] = '\0';
	int status;
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			return vs_err(err, errno, "wait for %s", helper);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 126)
		return vs_err(err, 0, "a rootless map of more than the caller's own id needs %s "
				      "(Debian package uidmap) and a range in /etc/sub%cid: %s not "
				      "found",
			      helper, helper[3], helper);
	return vs_err(err, 0, "%s %s failed (is the range in /etc/sub%cid?): %s", helper,
		      args[0], helper[3], used ? said : "no message");
}

int idmap_write_userns(pid_t pid, const struct spec_id_mapping *uids, size_t n_uids,
		       const struct spec_id_mapping *gids, size_t n_gids, vs_err_t *err)
{
	bool privileged = geteuid() == 0;
	if (privileged || own_id_only(uids, n_uids, geteuid())) {
		if (idmap_write(pid, "uid_map", uids, n_uids, err) < 0)
			return vs_err_wrap(err, "linux.uidMappings");
	} else if (run_helper("newuidmap", pid, uids, n_uids, err) < 0) {
		return vs_err_wrap(err, "linux.uidMappings");
	}
	if (!privileged && own_id_only(gids, n_gids, getegid())) {
		/* the kernel takes an unprivileged gid map only once setgroups is off for good,
		 * so that no one can drop a group to get past a deny rule */
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/setgroups", pid);
		if (vs_write_file(path, "deny", 4, err) < 0)
			return vs_err_wrap(err, "linux.gidMappings");
	} else if (!privileged) {
		if (n_gids && run_helper("newgidmap", pid, gids, n_gids, err) < 0)
			return vs_err_wrap(err, "linux.gidMappings");
		return 0;
	}
	if (idmap_write(pid, "gid_map", gids, n_gids, err) < 0)
		return vs_err_wrap(err, "linux.gidMappings");
	return 0;
}

int idmap_userns_open(const struct spec_id_mapping *uids, size_t n_uids,
		      const struct spec_id_mapping *gids, size_t n_gids, vs_err_t *err)
{
	int ready[2], done[2];
	if (pipe2(ready, O_CLOEXEC) < 0)
		return vs_err(err, errno, "pipe");
	if (pipe2(done, O_CLOEXEC) < 0) {
		close(ready[0]);
		close(ready[1]);
		return vs_err(err, errno, "pipe");
	}
	pid_t pid = fork();
	if (pid == 0) {
		/* holds the namespace open until the parent has its fd (EOF on done) */
		close(ready[0]);
		close(done[1]);
		char c = unshare(CLONE_NEWUSER) == 0 ? 'y' : 'n';
		if (write(ready[1], &c, 1) == 1)
			(void)!read(done[0], &c, 1);
		_exit(0);
	}
	close(ready[1]);
	close(done[0]);
	int fd = -1;
	char c = 0;
	if (pid < 0)
		vs_err(err, errno, "fork");
	else if (read(ready[0], &c, 1) != 1 || c != 'y')
		vs_err(err, EPERM, "make a user namespace for the mapping");
	else if (idmap_write(pid, "uid_map", uids, n_uids, err) == 0 &&
		 idmap_write(pid, "gid_map", gids, n_gids, err) == 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/user", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			vs_err(err, errno, "open the mapping's user namespace");
	}
	close(ready[0]);
	close(done[1]);
	if (pid > 0)
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	return fd;
}
