#include "oci/idmap.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
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
