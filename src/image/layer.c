/* The tar half of layer unpacking. Safety rules (docs/images.md):
 * - an entry's name is relative and has no `..` component, else the layer is refused;
 * - the directories on an entry's way are resolved inside the layer root without
 *   following any symlink (openat2 RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS): a layer tar
 *   never needs its own symlinks to place an entry, so one that does is refused;
 * - a symlink's relative target may not climb above the layer root (docker's rule);
 *   absolute targets are kept, they resolve inside the container's root at run time;
 * - a hardlink's target is an entry of the same layer, by the same name rules;
 * - device nodes are not made (the runtime makes /dev from the config), setuid and
 *   setgid bits are kept (a rootful image carries su and ping);
 * - the tar stream and the sum of declared entry sizes are capped. */
#include "image/layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "base/inroot.h"
#include "base/log.h"
#include "base/util.h"
#include "image/layer_stream.h"

#define WHITEOUT ".wh."
#define OPAQUE ".wh..wh..opq"

/* A directory's times are set after its children are in place. */
struct dir_times {
	char *path;
	struct timespec ts[2];
};

struct unpack {
	int rootfd;
	const char *what;
	uint64_t declared, max_bytes;
	struct dir_times *dirs;
	size_t n_dirs, cap_dirs;
	unsigned skipped_devices;
};

/* Cleans raw into out ("./a//b/" -> "a/b"); refuses absolute names and `..`. */
static int clean_name(const char *raw, char *out, size_t outlen, const char *what, vs_err_t *err)
{
	if (!raw)
		return vs_err(err, 0, "%s: an entry's name is not valid in this locale", what);
	if (raw[0] == '/')
		return vs_err(err, 0, "%s: entry `%s`: absolute path refused", what, raw);
	size_t o = 0;
	for (const char *c = raw; *c;) {
		const char *end = strchr(c, '/');
		size_t n = end ? (size_t)(end - c) : strlen(c);
		if (n == 2 && c[0] == '.' && c[1] == '.')
			return vs_err(err, 0, "%s: entry `%s`: `..` leaves the layer: refused",
				      what, raw);
		if (n && !(n == 1 && c[0] == '.')) {
			if (o + n + 2 > outlen)
				return vs_err(err, ENAMETOOLONG, "%s: entry `%.64s...`", what, raw);
			if (o)
				out[o++] = '/';
			memcpy(out + o, c, n);
			o += n;
		}
		c += n;
		while (*c == '/')
			c++;
	}
	out[o] = '\0';
	return 0;
}

/* Opens directory dir (cleaned, may be "") of the layer as O_PATH, never through a
 * symlink, making what is missing when create. */
static int open_dir(struct unpack *u, const char *dir, bool create, const char *entry,
		    vs_err_t *err)
{
	const uint64_t strict = RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV;
	int fd = vs_openat2_in_root(u->rootfd, *dir ? dir : ".", O_PATH | O_DIRECTORY, strict);
	if (fd < 0 && errno == ENOENT && create) {
		cleanup_free char *copy = strdup(dir);
		if (!copy)
			return vs_err(err, ENOMEM, "%s", u->what);
		fd = fcntl(u->rootfd, F_DUPFD_CLOEXEC, 3);
		for (char *c = copy, *save = NULL; fd >= 0 && (c = strtok_r(c, "/", &save));
		     c = NULL) {
			if (mkdirat(fd, c, 0755) < 0 && errno != EEXIST) {
				int e = errno;
				close(fd);
				return vs_err(err, e, "%s: entry `%s`: mkdir `%s`", u->what, entry,
					      c);
			}
			int next = vs_openat2_in_root(fd, c, O_PATH | O_DIRECTORY, strict);
			int e = errno;
			close(fd);
			fd = next;
			errno = e;
		}
	}
	if (fd < 0) {
		if (errno == ELOOP)
			return vs_err(err, 0,
				      "%s: entry `%s`: its directory `%s` goes through a symlink: "
				      "refused",
				      u->what, entry, dir);
		if (errno == ENOTDIR)
			return vs_err(err, 0, "%s: entry `%s`: `%s` is not a directory", u->what,
				      entry, dir);
		return vs_err(err, errno, "%s: entry `%s`: open `%s`", u->what, entry, dir);
	}
	return fd;
}

/* Splits a cleaned name in place into its directory and last component. */
static const char *split(char *name)
{
	char *slash = strrchr(name, '/');
	if (!slash) {
		memmove(name + 1, name, strlen(name) + 1);
		name[0] = '\0';
		return name + 1;
	}
	*slash = '\0';
	return slash + 1;
}

/* Makes room for a new entry named base: a later entry replaces an earlier one, a
 * directory stays a directory (its contents are kept). Returns 1 if a directory is
 * kept. */
static int clear_name(struct unpack *u, int dirfd, const char *base, bool want_dir,
		      const char *entry, vs_err_t *err)
{
	struct stat st;
	if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : vs_err(err, errno, "%s: entry `%s`", u->what, entry);
	if (S_ISDIR(st.st_mode)) {
		if (want_dir)
			return 1;
		return vs_remove_tree(dirfd, base, err) < 0 ? -1 : 0;
	}
	if (unlinkat(dirfd, base, 0) < 0)
		return vs_err(err, errno, "%s: entry `%s`: replace", u->what, entry);
	return 0;
}

static bool xattr_allowed(const char *name)
{
	/* overlayfs reads trusted.overlay.* as its own metadata (opaque, redirect,
	 * metacopy): a layer must not forge it */
	if (vs_str_has_prefix(name, "trusted.overlay."))
		return false;
	return vs_str_has_prefix(name, "user.") || vs_str_has_prefix(name, "security.") ||
	       vs_str_has_prefix(name, "trusted.");
}

static int apply_xattrs(struct unpack *u, int fd, struct archive_entry *e, const char *entry,
			vs_err_t *err)
{
	const char *name;
	const void *value;
	size_t size;
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
		if (!xattr_allowed(name)) {
			vs_warn("%s: entry `%s`: xattr `%s` skipped", u->what, entry, name);
			continue;
		}
		if (fsetxattr(fd, name, value, size, 0) < 0) {
			if (errno == ENOTSUP && vs_str_has_prefix(name, "security.selinux"))
				continue;
			return vs_err(err, errno, "%s: entry `%s`: set xattr `%s`", u->what, entry,
				      name);
		}
	}
	return 0;
}

static void entry_times(struct archive_entry *e, struct timespec ts[2])
{
	ts[1].tv_sec = archive_entry_mtime(e);
	ts[1].tv_nsec = archive_entry_mtime_nsec(e);
	if (archive_entry_atime_is_set(e)) {
		ts[0].tv_sec = archive_entry_atime(e);
		ts[0].tv_nsec = archive_entry_atime_nsec(e);
	} else {
		ts[0] = ts[1];
	}
}

/* Owner, then mode (chown clears setuid), xattrs (file capabilities among them: set
 * after chown, which drops security.capability), times. */
static int apply_meta(struct unpack *u, int fd, struct archive_entry *e, const char *entry,
		      bool times, vs_err_t *err)
{
	if (fchown(fd, archive_entry_uid(e), archive_entry_gid(e)) < 0)
		return vs_err(err, errno, "%s: entry `%s`: chown", u->what, entry);
	if (fchmod(fd, archive_entry_perm(e) & 07777) < 0)
		return vs_err(err, errno, "%s: entry `%s`: chmod", u->what, entry);
	if (apply_xattrs(u, fd, e, entry, err) < 0)
		return -1;
	struct timespec ts[2];
	entry_times(e, ts);
	if (times && futimens(fd, ts) < 0)
		return vs_err(err, errno, "%s: entry `%s`: set times", u->what, entry);
	return 0;
}

static int remember_dir(struct unpack *u, const char *path, struct archive_entry *e, vs_err_t *err)
{
	if (u->n_dirs == u->cap_dirs) {
		size_t cap = u->cap_dirs ? 2 * u->cap_dirs : 64;
		struct dir_times *d = realloc(u->dirs, cap * sizeof(*d));
		if (!d)
			return vs_err(err, ENOMEM, "%s", u->what);
		u->dirs = d;
		u->cap_dirs = cap;
	}
	u->dirs[u->n_dirs].path = strdup(path);
	if (!u->dirs[u->n_dirs].path)
		return vs_err(err, ENOMEM, "%s", u->what);
	entry_times(e, u->dirs[u->n_dirs].ts);
	u->n_dirs++;
	return 0;
}

static int write_data(struct unpack *u, struct archive *a, int fd, struct archive_entry *e,
		      const char *entry, vs_err_t *err)
{
	const void *buf;
	size_t size;
	la_int64_t offset;
	int rc;
	while ((rc = archive_read_data_block(a, &buf, &size, &offset)) == ARCHIVE_OK) {
		const char *p = buf;
		while (size) {
			ssize_t n = pwrite(fd, p, size, offset);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return vs_err(err, errno, "%s: entry `%s`: write", u->what, entry);
			p += n;
			size -= (size_t)n;
			offset += n;
		}
	}
	if (rc != ARCHIVE_EOF)
		return vs_err(err, 0, "%s: entry `%s`: %s", u->what, entry,
			      archive_error_string(a) ? archive_error_string(a) : "read failed");
	/* a sparse file's hole at the end is in its size, not in its blocks */
	if (archive_entry_size_is_set(e) && ftruncate(fd, archive_entry_size(e)) < 0)
		return vs_err(err, errno, "%s: entry `%s`: truncate", u->what, entry);
	return 0;
}

static int whiteout(struct unpack *u, const char *dir, const char *base, const char *entry,
		    vs_err_t *err)
{
	cleanup_close int dfd = open_dir(u, dir, true, entry, err);
	if (dfd < 0)
		return -1;
	if (strcmp(base, OPAQUE) != 0 && vs_str_has_prefix(base, WHITEOUT WHITEOUT))
		return 0; /* aufs's own metadata (.wh..wh.plnk, .wh..wh.aufs): not content */
	if (strcmp(base, OPAQUE) == 0) {
		/* trusted.overlay.opaque = y: overlayfs hides the lower layers' entries */
		cleanup_close int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || fsetxattr(fd, "trusted.overlay.opaque", "y", 1, 0) < 0)
			return vs_err(err, errno, "%s: entry `%s`: mark opaque", u->what, entry);
		return 0;
	}
	const char *name = base + strlen(WHITEOUT);
	if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return vs_err(err, 0, "%s: entry `%s`: bad whiteout name: refused", u->what, entry);
	if (clear_name(u, dfd, name, false, entry, err) < 0)
		return -1;
	/* overlayfs's whiteout: a character device 0/0 */
	if (mknodat(dfd, name, S_IFCHR | 0, makedev(0, 0)) < 0)
		return vs_err(err, errno, "%s: entry `%s`: make whiteout", u->what, entry);
	return 0;
}

static bool symlink_escapes(const char *dir, const char *target)
{
	if (target[0] == '/')
		return false;
	int depth = 0;
	for (const char *c = dir; *c;) {
		const char *end = strchr(c, '/');
		depth++;
		c = end ? end + 1 : c + strlen(c);
	}
	for (const char *c = target; *c;) {
		const char *end = strchr(c, '/');
		size_t n = end ? (size_t)(end - c) : strlen(c);
		if (n == 2 && c[0] == '.' && c[1] == '.') {
			if (--depth < 0)
				return true;
		} else if (n && !(n == 1 && c[0] == '.')) {
			depth++;
		}
		c += n;
		while (*c == '/')
			c++;
	}
	return false;
}

static int hardlink(struct unpack *u, int dfd, const char *base, const char *raw_target,
		    const char *entry, vs_err_t *err)
{
	char target[PATH_MAX];
	if (clean_name(raw_target, target, sizeof(target) - 1, u->what, err) < 0)
		return vs_err_wrap(err, "hardlink `%s`", entry);
	if (!*target)
		return vs_err(err, 0, "%s: entry `%s`: hardlink to the layer root: refused",
			      u->what, entry);
	const char *tbase = split(target);
	const char *tdir = tbase == target + 1 ? "" : target;
	cleanup_close int tfd = open_dir(u, tdir, false, entry, err);
	if (tfd < 0)
		return -1;
	struct stat st;
	if (fstatat(tfd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return vs_err(err, errno, "%s: entry `%s`: hardlink target `%s`", u->what, entry,
			      raw_target);
	if (S_ISDIR(st.st_mode))
		return vs_err(err, 0, "%s: entry `%s`: hardlink to a directory: refused", u->what,
			      entry);
	if (clear_name(u, dfd, base, false, entry, err) < 0)
		return -1;
	if (linkat(tfd, tbase, dfd, base, 0) < 0)
		return vs_err(err, errno, "%s: entry `%s`: link to `%s`", u->what, entry,
			      raw_target);
	return 0;
}

static int unpack_entry(struct unpack *u, struct archive *a, struct archive_entry *e, vs_err_t *err)
{
	/* in the C locale a pax name that is not ASCII has no multibyte form: its UTF-8
	 * bytes are the name on disk */
	const char *raw = archive_entry_pathname(e);
	if (!raw)
		raw = archive_entry_pathname_utf8(e);
	char name[PATH_MAX + 1];
	if (clean_name(raw, name, sizeof(name) - 1, u->what, err) < 0)
		return -1;
	const char *entry = raw;
	if (archive_entry_size_is_set(e) && archive_entry_size(e) > 0) {
		u->declared += (uint64_t)archive_entry_size(e);
		if (u->declared > u->max_bytes)
			return vs_err(err, 0,
				      "%s: entry `%s`: declared sizes exceed the cap of %llu bytes "
				      "(raise --max-layer-size)",
				      u->what, entry, (unsigned long long)u->max_bytes);
	}
	mode_t type = archive_entry_filetype(e);
	if (!*name) {
		/* the layer root itself ("./"): its metadata only */
		if (type != AE_IFDIR)
			return vs_err(err, 0, "%s: entry `%s`: the root must be a directory",
				      u->what, entry);
		cleanup_close int fd = openat(u->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || apply_meta(u, fd, e, entry, false, err) < 0)
			return fd < 0 ? vs_err(err, errno, "%s: layer root", u->what) : -1;
		return remember_dir(u, "", e, err);
	}
	char full[PATH_MAX + 1];
	strcpy(full, name);
	const char *base = split(name);
	const char *dir = base == name + 1 ? "" : name;
	if (vs_str_has_prefix(base, WHITEOUT))
		return whiteout(u, dir, base, entry, err);
	cleanup_close int dfd = open_dir(u, dir, true, entry, err);
	if (dfd < 0)
		return -1;
	const char *link = archive_entry_hardlink(e);
	if (!link)
		link = archive_entry_hardlink_utf8(e);
	if (link)
		return hardlink(u, dfd, base, link, entry, err);
	struct timespec ts[2];
	entry_times(e, ts);
	switch (type) {
	case AE_IFDIR: {
		int kept = clear_name(u, dfd, base, true, entry, err);
		if (kept < 0)
			return -1;
		if (!kept && mkdirat(dfd, base, 0700) < 0)
			return vs_err(err, errno, "%s: entry `%s`: mkdir", u->what, entry);
		cleanup_close int fd =
		    openat(dfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return vs_err(err, errno, "%s: entry `%s`: open", u->what, entry);
		if (apply_meta(u, fd, e, entry, false, err) < 0)
			return -1;
		return remember_dir(u, full, e, err);
	}
	case AE_IFREG: {
		if (clear_name(u, dfd, base, false, entry, err) < 0)
			return -1;
		cleanup_close int fd =
		    openat(dfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return vs_err(err, errno, "%s: entry `%s`: create", u->what, entry);
		if (write_data(u, a, fd, e, entry, err) < 0)
			return -1;
		return apply_meta(u, fd, e, entry, true, err);
	}
	case AE_IFLNK: {
		const char *target = archive_entry_symlink(e);
		if (!target)
			target = archive_entry_symlink_utf8(e);
		if (!target || !*target)
			return vs_err(err, 0, "%s: entry `%s`: symlink without a target", u->what,
				      entry);
		if (symlink_escapes(dir, target))
			return vs_err(err, 0,
				      "%s: entry `%s`: symlink to `%s` leaves the layer: refused",
				      u->what, entry, target);
		if (clear_name(u, dfd, base, false, entry, err) < 0)
			return -1;
		if (symlinkat(target, dfd, base) < 0 ||
		    fchownat(dfd, base, archive_entry_uid(e), archive_entry_gid(e),
			     AT_SYMLINK_NOFOLLOW) < 0 ||
		    utimensat(dfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
			return vs_err(err, errno, "%s: entry `%s`: symlink", u->what, entry);
		return 0;
	}
	case AE_IFIFO:
		if (clear_name(u, dfd, base, false, entry, err) < 0)
			return -1;
		if (mknodat(dfd, base, S_IFIFO | 0600, 0) < 0 ||
		    fchownat(dfd, base, archive_entry_uid(e), archive_entry_gid(e),
			     AT_SYMLINK_NOFOLLOW) < 0 ||
		    fchmodat(dfd, base, archive_entry_perm(e) & 07777, 0) < 0 ||
		    utimensat(dfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
			return vs_err(err, errno, "%s: entry `%s`: fifo", u->what, entry);
		return 0;
	case AE_IFCHR:
	case AE_IFBLK:
	case AE_IFSOCK:
		u->skipped_devices++;
		return 0;
	default:
		return vs_err(err, 0, "%s: entry `%s`: unknown file type %o", u->what, entry,
			      (unsigned)type);
	}
}

static int set_dir_times(struct unpack *u, vs_err_t *err)
{
	/* children first: setting a parent's times never disturbs a child's */
	for (size_t i = u->n_dirs; i-- > 0;) {
		/* a later entry may have replaced the directory: nothing to set then */
		vs_err_t gone = NULL;
		cleanup_close int fd = open_dir(u, u->dirs[i].path, false, u->dirs[i].path, &gone);
		vs_err_free(&gone);
		if (fd < 0)
			continue;
		char p[64];
		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		if (utimensat(AT_FDCWD, p, u->dirs[i].ts, 0) < 0)
			return vs_err(err, errno, "%s: entry `%s`: set times", u->what,
				      u->dirs[i].path);
	}
	return 0;
}

static la_ssize_t archive_read_cb(struct archive *a, void *data, const void **buf)
{
	la_ssize_t n = layer_stream_read(data, buf);
	if (n < 0)
		archive_set_error(a, EIO, "layer stream failed");
	return n;
}

int layer_unpack(int blobfd, int rootfd, const char *what, const struct layer_expect *x,
		 struct layer_result *res, vs_err_t *err)
{
	struct layer_stream *s = malloc(sizeof(*s));
	if (!s)
		return vs_err(err, ENOMEM, "%s", what);
	struct unpack u = {.rootfd = rootfd, .what = what, .max_bytes = x->max_bytes};
	struct archive *a = NULL;
	int rc = -1;
	if (layer_stream_open(s, blobfd, what, x->blob_size, x->max_bytes, err) < 0)
		goto out;
	a = archive_read_new();
	if (!a || archive_read_support_format_tar(a) != ARCHIVE_OK) {
		vs_err(err, ENOMEM, "%s: libarchive", what);
		goto out;
	}
	if (archive_read_open(a, s, NULL, archive_read_cb, NULL) != ARCHIVE_OK)
		goto tar_error;
	for (;;) {
		struct archive_entry *e;
		int r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
			goto tar_error;
		if (unpack_entry(&u, a, e, err) < 0) {
			if (s->error) {
				/* the stream's own failure is the first cause */
				vs_err_free(err);
				*err = steal_ptr(s->error);
			}
			goto out;
		}
	}
	if (layer_stream_finish(s, err) < 0 || set_dir_times(&u, err) < 0)
		goto out;
	layer_stream_digests(s, res->blob_digest, res->diff_id);
	res->tar_bytes = s->tar_bytes;
	res->skipped_devices = u.skipped_devices;
	if (x->blob_digest && strcmp(x->blob_digest, res->blob_digest) != 0) {
		vs_err(err, 0, "%s: digest mismatch: the blob's content is %s", what,
		       res->blob_digest);
		goto out;
	}
	if (x->diff_id && strcmp(x->diff_id, res->diff_id) != 0) {
		vs_err(err, 0, "%s: diff_id mismatch: the config says %s, the layer is %s", what,
		       x->diff_id, res->diff_id);
		goto out;
	}
	rc = 0;
	goto out;
tar_error:
	if (s->error) {
		*err = steal_ptr(s->error);
	} else {
		vs_err(err, 0, "%s: not a valid tar stream: %s", what,
		       archive_error_string(a) ? archive_error_string(a) : "?");
	}
out:
	if (a)
		archive_read_free(a);
	layer_stream_close(s);
	free(s);
	for (size_t i = 0; i < u.n_dirs; i++)
		free(u.dirs[i].path);
	free(u.dirs);
	return rc;
}
