/* Appending the agent to the guest's initramfs (a newc archive, the kernel's
 * Documentation/driver-api/early-userspace/buffer-format.rst). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "vmc/initrd.h"

char *vmc_agent_path(void)
{
	const char *env = getenv("VESSEL_AGENT");
	if (env && *env)
		return strdup(env);
	char *self = vs_exe_dir();
	char *p = NULL;
	if (!self || asprintf(&p, "%s/../build/vessel", self) < 0) {
		free(self);
		return NULL;
	}
	free(self);
	if (access(p, X_OK) == 0)
		return p;
	free(p);
	return strdup("/proc/self/exe");
}

static int pad4(int fd, off_t *off, vs_err_t *err)
{
	static const char zero[4];
	size_t n = (size_t)((4 - (*off & 3)) & 3);
	if (n && vs_write_all(fd, zero, n, err) < 0)
		return -1;
	*off += (off_t)n;
	return 0;
}

static int entry(int fd, off_t *off, const char *name, unsigned mode, unsigned long size,
		 vs_err_t *err)
{
	char hdr[128];
	/* magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor,
	 * rdevmajor, rdevminor, namesize, check */
	snprintf(hdr, sizeof(hdr), "070701%08X%08X%08X%08X%08X%08X%08lX%08X%08X%08X%08X%08zX%08X",
		 1u, mode, 0u, 0u, 1u, 0u, size, 0u, 0u, 0u, 0u, strlen(name) + 1, 0u);
	if (vs_write_all(fd, hdr, 110, err) < 0 ||
	    vs_write_all(fd, name, strlen(name) + 1, err) < 0)
		return -1;
	*off += 110 + (off_t)strlen(name) + 1;
	return pad4(fd, off, err);
}

static int copy_file(int out, const char *path, off_t *off, struct stat *sb, vs_err_t *err)
{
	int in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return vs_err(err, errno, "open `%s`", path);
	if (fstat(in, sb) < 0) {
		close(in);
		return vs_err(err, errno, "stat `%s`", path);
	}
	off_t left = sb->st_size;
	while (left > 0) {
		ssize_t n = sendfile(out, in, NULL, (size_t)left);
		if (n <= 0) {
			close(in);
			return vs_err(err, n < 0 ? errno : EIO, "copy `%s`", path);
		}
		left -= n;
	}
	close(in);
	*off += sb->st_size;
	return 0;
}

int vmc_initrd_write(const char *base, const char *agent, const char *out, vs_err_t *err)
{
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return vs_err(err, errno, "create `%s`", out);
	off_t off = 0;
	struct stat sb;
	int in = -1;
	if (copy_file(fd, base, &off, &sb, err) < 0)
		goto fail;
	/* an uncompressed archive is only looked for at a 4-byte boundary */
	if (pad4(fd, &off, err) < 0)
		goto fail;
	in = open(agent, O_RDONLY | O_CLOEXEC);
	if (in < 0 || fstat(in, &sb) < 0) {
		vs_err(err, errno, "the agent binary `%s` (VESSEL_AGENT; `make vessel` builds it)",
		       agent);
		goto fail;
	}
	close(in);
	in = -1;
	if (entry(fd, &off, "vessel", 0100755, (unsigned long)sb.st_size, err) < 0 ||
	    copy_file(fd, agent, &off, &sb, err) < 0 || pad4(fd, &off, err) < 0 ||
	    entry(fd, &off, "TRAILER!!!", 0, 0, err) < 0)
		goto fail;
	if (close(fd) < 0)
		return vs_err(err, errno, "write `%s`", out);
	return 0;
fail:
	if (in >= 0)
		close(in);
	close(fd);
	unlink(out);
	return vs_err_wrap(err, "guest initramfs `%s`", out);
}
