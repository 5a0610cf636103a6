/* overlay_copy: the fallback where overlayfs cannot be mounted. Each layer is applied
 * over the previous ones as overlayfs would show them: a whiteout removes, an opaque
 * directory empties, anything else replaces. Hardlinks between files become copies. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/util.h"
#include "image/layer.h"
#include "image/overlay.h"

static int copy_xattrs(int from, int to, const char *name, vs_err_t *err)
{
	char list[8192], value[8192];
	ssize_t n = flistxattr(from, list, sizeof(list));
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(list + i) + 1) {
		if (vs_str_has_prefix(list + i, "trusted.overlay."))
			continue;
		ssize_t v = fgetxattr(from, list + i, value, sizeof(value));
		if (v >= 0 && fsetxattr(to, list + i, value, (size_t)v, 0) < 0)
			return vs_err(err, errno, "copy: `%s`: xattr `%s`", name, list + i);
	}
	return 0;
}

static int copy_meta(int from, int to, const struct stat *st, const char *name, vs_err_t *err)
{
	struct timespec ts[2] = {st->st_atim, st->st_mtim};
	if (fchown(to, st->st_uid, st->st_gid) < 0 || fchmod(to, st->st_mode & 07777) < 0 ||
	    copy_xattrs(from, to, name, err) < 0 || futimens(to, ts) < 0)
		return *err ? -1 : vs_err(err, errno, "copy: `%s`: metadata", name);
	return 0;
}

static int copy_file(int sdir, int ddir, const char *name, const struct stat *st, vs_err_t *err)
{
	cleanup_close int in = openat(sdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	cleanup_close int out =
	    openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (in < 0 || out < 0)
		return vs_err(err, errno, "copy: `%s`", name);
	bool plain = false; /* copy_file_range refuses across file systems (EXDEV) */
	for (off_t left = st->st_size; left > 0;) {
		ssize_t n = -1;
		if (!plain) {
			n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
			if (n < 0 && (errno == EXDEV || errno == EOPNOTSUPP || errno == ENOSYS ||
				      errno == EINVAL)) {
				plain = true;
				continue;
			}
		} else {
			char buf[1 << 16];
			n = read(in, buf, sizeof(buf));
			if (n > 0 && vs_write_all(out, buf, (size_t)n, err) < 0)
				return vs_err_wrap(err, "copy: `%s`", name);
		}
		if (n <= 0)
			return vs_err(err, n < 0 ? errno : EIO, "copy: `%s`", name);
		left -= n;
	}
	return copy_meta(in, out, st, name, err);
}

static int apply_dir(int sdir, int ddir, vs_err_t *err);

static int apply_entry(int sdir, int ddir, const char *name, vs_err_t *err)
{
	struct stat st, dst;
	if (fstatat(sdir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return vs_err(err, errno, "copy: `%s`", name);
	bool exists = fstatat(ddir, name, &dst, AT_SYMLINK_NOFOLLOW) == 0;
	if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0))
		return vs_remove_tree(ddir, name, err); /* a whiteout */
	if (S_ISDIR(st.st_mode)) {
		cleanup_close int s =
		    openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (s < 0)
			return vs_err(err, errno, "copy: `%s`", name);
		char opaque[2];
		bool opq =
		    fgetxattr(s, "trusted.overlay.opaque", opaque, 1) == 1 && opaque[0] == 'y';
		if (exists && (!S_ISDIR(dst.st_mode) || opq)) {
			if (vs_remove_tree(ddir, name, err) < 0)
				return -1;
			exists = false;
		}
		if (!exists && mkdirat(ddir, name, 0700) < 0)
			return vs_err(err, errno, "copy: mkdir `%s`", name);
		cleanup_close int d =
		    openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (d < 0 || apply_dir(s, d, err) < 0)
			return d < 0 ? vs_err(err, errno, "copy: `%s`", name) : -1;
		return copy_meta(s, d, &st, name, err);
	}
	if (exists && vs_remove_tree(ddir, name, err) < 0)
		return -1;
	if (S_ISREG(st.st_mode))
		return copy_file(sdir, ddir, name, &st, err);
	if (S_ISLNK(st.st_mode)) {
		char target[4096];
		ssize_t n = readlinkat(sdir, name, target, sizeof(target) - 1);
		if (n < 0)
			return vs_err(err, errno, "copy: readlink `%s`", name);
		target[n] = '\0';
		struct timespec ts[2] = {st.st_atim, st.st_mtim};
		if (symlinkat(target, ddir, name) < 0 ||
		    fchownat(ddir, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
		    utimensat(ddir, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
			return vs_err(err, errno, "copy: symlink `%s`", name);
		return 0;
	}
	if (S_ISFIFO(st.st_mode)) {
		if (mknodat(ddir, name, S_IFIFO | (st.st_mode & 07777), 0) < 0 ||
		    fchownat(ddir, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
			return vs_err(err, errno, "copy: fifo `%s`", name);
		return 0;
	}
	return 0; /* the unpacker makes no other kind */
}

static int apply_dir(int sdir, int ddir, vs_err_t *err)
{
	int fd = dup(sdir);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return vs_err(err, errno, "copy: opendir");
	}
	rewinddir(d);
	struct dirent *de;
	int rc = 0;
	while (rc == 0 && (de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			rc = apply_entry(sdir, ddir, de->d_name, err);
	closedir(d);
	return rc;
}

int overlay_copy(const char *const *lowers, size_t n, const char *target, vs_err_t *err)
{
	cleanup_close int d = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d < 0)
		return vs_err(err, errno, "open `%s`", target);
	for (size_t i = n; i-- > 0;) {
		cleanup_close int s = open(lowers[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (s < 0)
			return vs_err(err, errno, "open `%s`", lowers[i]);
		if (apply_dir(s, d, err) < 0)
			return vs_err_wrap(err, "layer `%s`", lowers[i]);
		struct stat st;
		if (fstat(s, &st) < 0 || copy_meta(s, d, &st, target, err) < 0)
			return -1;
	}
	return 0;
}
