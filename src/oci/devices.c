#include "oci/devices.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "base/util.h"
#include "oci/mounts.h"

static const struct {
	const char *name;
	unsigned major, minor;
} default_devices[] = {
	{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
};

static const struct {
	const char *target, *name;
} default_links[] = {
	{"/proc/self/fd", "fd"},
	{"/proc/self/fd/0", "stdin"},
	{"/proc/self/fd/1", "stdout"},
	{"/proc/self/fd/2", "stderr"},
	{"/proc/kcore", "core"},
	{"pts/ptmx", "ptmx"},
};

/* Splits "/dev/net/tun" into the opened parent ("/dev/net") and "tun". */
static int open_parent(int rootfd, const char *path, const char **base, vs_err_t *err)
{
	const char *slash = strrchr(path, '/');
	*base = slash + 1;
	cleanup_free char *dir = strndup(path, (size_t)(slash - path));
	if (!dir)
		return vs_err(err, ENOMEM, "devices");
	return open_in_root(rootfd, *dir ? dir : "/", true, false, err);
}

static int make_device(int rootfd, const char *path, char type, unsigned major, unsigned minor,
		       mode_t mode, bool in_userns, vs_err_t *err)
{
	const char *base;
	cleanup_close int pfd = open_parent(rootfd, path, &base, err);
	if (pfd < 0)
		return -1;
	/* mknodat on an O_PATH dir fd is refused: go through /proc/self/fd */
	char dir[64];
	snprintf(dir, sizeof(dir), "/proc/self/fd/%d", pfd);
	cleanup_close int dfd = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (dfd < 0)
		return vs_err(err, errno, "open parent of `%s`", path);
	unlinkat(dfd, base, 0);
	if (!in_userns) {
		mode_t kind = type == 'b' ? S_IFBLK : type == 'p' ? S_IFIFO : S_IFCHR;
		if (mknodat(dfd, base, kind | mode, makedev(major, minor)) == 0)
			return 0;
		/* a runtime that is root only of a user namespace (podman rootless) cannot
		 * mknod either, whatever the config says: bind as crun does */
		if (errno != EPERM)
			return vs_err(err, errno, "mknod `%s`", path);
	}
	/* no mknod in a user namespace: bind the host's node onto an empty file */
	int f = openat(dfd, base, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
	if (f < 0)
		return vs_err(err, errno, "create `%s`", path);
	char target[64];
	snprintf(target, sizeof(target), "/proc/self/fd/%d", f);
	int rc = mount(path, target, NULL, MS_BIND, NULL);
	int e = errno;
	close(f);
	if (rc < 0)
		return vs_err(err, e, "bind the host's `%s`", path);
	return 0;
}

int devices_setup(const struct spec *s, int rootfd, bool dev_mounted, bool in_userns,
		  vs_err_t *err)
{
	if (dev_mounted) {
		for (size_t i = 0; i < ARRAY_SIZE(default_devices); i++) {
			char path[32];
			snprintf(path, sizeof(path), "/dev/%s", default_devices[i].name);
			if (make_device(rootfd, path, 'c', default_devices[i].major,
					default_devices[i].minor, 0666, in_userns, err) < 0)
				return -1;
		}
		cleanup_close int devfd = open_in_root(rootfd, "/dev", false, false, err);
		if (devfd < 0)
			return -1;
		char dir[64];
		snprintf(dir, sizeof(dir), "/proc/self/fd/%d", devfd);
		cleanup_close int dfd = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
		if (dfd < 0)
			return vs_err(err, errno, "open /dev in the rootfs");
		for (size_t i = 0; i < ARRAY_SIZE(default_links); i++)
			if (symlinkat(default_links[i].target, dfd, default_links[i].name) < 0 &&
			    errno != EEXIST)
				return vs_err(err, errno, "symlink /dev/%s", default_links[i].name);
		if (s->has_process && s->process.terminal) {
			/* the init binds its pty here once it has one */
			int f = openat(dfd, "console", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
			if (f < 0)
				return vs_err(err, errno, "create /dev/console");
			close(f);
		}
	}
	for (size_t i = 0; i < s->n_devices; i++) {
		const struct spec_device *d = &s->devices[i];
		mode_t mode = d->has_mode ? d->mode : 0666;
		/* "/dev/foo/" names the node /dev/foo, as in crun */
		char path[PATH_MAX];
		int n = snprintf(path, sizeof(path), "%s", d->path);
		if (n < 0 || n >= (int)sizeof(path))
			return vs_err(err, ENAMETOOLONG, "linux.devices[%zu].path", i);
		while (n > 1 && path[n - 1] == '/')
			path[--n] = '\0';
		if (make_device(rootfd, path, d->type, (unsigned)d->major, (unsigned)d->minor,
				mode, in_userns, err) < 0)
			return vs_err_wrap(err, "linux.devices[%zu]", i);
		if (d->has_uid || d->has_gid) {
			cleanup_close int fd = open_in_root(rootfd, path, false, false, err);
			if (fd < 0)
				return -1;
			char p[64];
			snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
			if (chown(p, d->has_uid ? d->uid : (uid_t)-1,
				  d->has_gid ? d->gid : (gid_t)-1) < 0)
				return vs_err(err, errno, "linux.devices[%zu]: chown `%s`", i,
					      path);
		}
	}
	return 0;
}

static json_t *rule(bool allow, const char *type, json_int_t major, json_int_t minor,
		    const char *access)
{
	json_t *r = json_pack("{s:b, s:s, s:s}", "allow", allow, "type", type, "access", access);
	if (r && major >= 0)
		json_object_set_new(r, "major", json_integer(major));
	if (r && minor >= 0)
		json_object_set_new(r, "minor", json_integer(minor));
	return r;
}

json_t *devices_resources_with_defaults(json_t *resources, const struct spec_device *devs,
					size_t n_devs)
{
	json_t *res = resources ? json_deep_copy(resources) : json_object();
	if (!res)
		return NULL;
	json_t *list = json_object_get(res, "devices");
	if (!list || json_is_null(list)) {
		list = json_array();
		json_object_set_new(res, "devices", list);
	}
	/* a wrong type is left for the resources parser to report, naming the field */
	if (!json_is_array(list))
		return res;
	json_array_append_new(list, rule(true, "c", -1, -1, "m"));
	json_array_append_new(list, rule(true, "b", -1, -1, "m"));
	for (size_t i = 0; i < ARRAY_SIZE(default_devices); i++)
		json_array_append_new(list, rule(true, "c", default_devices[i].major,
						 default_devices[i].minor, "rwm"));
	json_array_append_new(list, rule(true, "c", 5, 1, "rwm"));   /* /dev/console */
	json_array_append_new(list, rule(true, "c", 5, 2, "rwm"));   /* /dev/ptmx */
	json_array_append_new(list, rule(true, "c", 136, -1, "rwm")); /* the pts devices */
	for (size_t i = 0; i < n_devs; i++) {
		if (devs[i].type == 'p')
			continue;
		char t[2] = {devs[i].type == 'u' ? 'c' : devs[i].type, 0};
		json_array_append_new(list, rule(true, t, devs[i].major, devs[i].minor, "rwm"));
	}
	return res;
}
