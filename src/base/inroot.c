#include "base/inroot.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/util.h"

int vs_openat2_in_root(int rootfd, const char *path, int flags, uint64_t resolve)
{
	struct open_how how = {
	    .flags = (uint64_t)(flags | O_CLOEXEC),
	    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | resolve,
	};
	return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
}

/* copy names a dangling symlink in the rootfs, rest what follows it in the path: the
 * path with the link's target spliced in, resolved as the kernel would inside the root */
static char *splice_link(int parent, const char *copy, const char *base, const char *rest)
{
	char target[PATH_MAX];
	ssize_t n = readlinkat(parent, base, target, sizeof(target) - 1);
	if (n <= 0)
		return NULL;
	target[n] = '\0';
	int dir_len = (int)(base - copy);
	char *out = NULL;
	if (asprintf(&out, "%.*s%s%s%s", target[0] == '/' ? 0 : dir_len, copy, target,
		     rest ? "/" : "", rest ? rest : "") < 0)
		return NULL;
	return out;
}

static int open_in_root_at_depth(int rootfd, const char *path, bool create, bool as_file, int links,
				 vs_err_t *err)
{
	while (*path == '/')
		path++;
	if (!*path)
		path = ".";
	int fd = vs_openat2_in_root(rootfd, path, O_PATH, 0);
	if (fd >= 0 || errno != ENOENT || !create) {
		if (fd < 0)
			return vs_err(err, errno, "open `/%s` in the rootfs", path);
		return fd;
	}
	/* walk down, creating what is missing; each parent was resolved inside the root,
	 * so mkdirat with a single name cannot leave it */
	cleanup_free char *copy = strdup(path);
	if (!copy)
		return vs_err(err, ENOMEM, "open_in_root");
	char *p = copy;
	for (;;) {
		char *slash = strchr(p, '/');
		bool last = !slash;
		if (slash)
			*slash = '\0';
		int probe = vs_openat2_in_root(rootfd, copy, O_PATH, 0);
		if (probe >= 0) {
			close(probe);
		} else if (errno == ENOENT) {
			char *base = strrchr(copy, '/');
			cleanup_close int parent = -1;
			if (base) {
				*base = '\0';
				parent = vs_openat2_in_root(rootfd, copy, O_PATH | O_DIRECTORY, 0);
				*base = '/';
				base++;
			} else {
				parent = vs_openat2_in_root(rootfd, ".", O_PATH | O_DIRECTORY, 0);
				base = copy;
			}
			if (parent < 0)
				return vs_err(err, errno, "open parent of `/%s` in the rootfs",
					      copy);
			struct stat st;
			if (fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISLNK(st.st_mode)) {
				/* a dangling symlink: create what it points to, as crun does */
				if (links >= 40)
					return vs_err(err, ELOOP, "open `/%s` in the rootfs", path);
				cleanup_free char *next =
				    splice_link(parent, copy, base, last ? NULL : slash + 1);
				if (!next)
					return vs_err(err, errno ? errno : ENOMEM,
						      "follow `/%s` in the rootfs", copy);
				return open_in_root_at_depth(rootfd, next, create, as_file,
							     links + 1, err);
			}
			int rc;
			if (last && as_file) {
				rc = openat(parent, base,
					    O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC,
					    0644);
				if (rc >= 0)
					close(rc);
			} else {
				rc = mkdirat(parent, base, 0755);
			}
			if (rc < 0 && errno != EEXIST)
				return vs_err(err, errno, "create `/%s` in the rootfs", copy);
		} else {
			return vs_err(err, errno, "open `/%s` in the rootfs", copy);
		}
		if (last)
			break;
		*slash = '/';
		p = slash + 1;
	}
	fd = vs_openat2_in_root(rootfd, path, O_PATH, 0);
	if (fd < 0)
		return vs_err(err, errno, "open `/%s` in the rootfs", path);
	return fd;
}

int open_in_root(int rootfd, const char *path, bool create, bool as_file, vs_err_t *err)
{
	return open_in_root_at_depth(rootfd, path, create, as_file, 0, err);
}
