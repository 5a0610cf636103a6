#include "oci/mounts.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/inroot.h"
#include "base/log.h"
#include "base/util.h"
#include "sandbox/sandbox.h"
#include "oci/devices.h"
#include "oci/idmap.h"
#include "oci/rootless.h"

#define fd_path(buf, fd) snprintf(buf, sizeof(buf), "/proc/self/fd/%d", fd)

/* Flags the kernel locks on a mount seen from a user namespace: a remount must
 * repeat them or it fails with EPERM. */
static unsigned long current_mount_flags(const char *target)
{
	struct statvfs sv;
	if (statvfs(target, &sv) < 0)
		return 0;
	unsigned long f = 0;
	if (sv.f_flag & ST_RDONLY)
		f |= MS_RDONLY;
	if (sv.f_flag & ST_NOSUID)
		f |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		f |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (sv.f_flag & ST_NOATIME)
		f |= MS_NOATIME;
	if (sv.f_flag & ST_NODIRATIME)
		f |= MS_NODIRATIME;
	if (sv.f_flag & ST_RELATIME)
		f |= MS_RELATIME;
	return f;
}

static int remount_bind(const char *target, unsigned long set, unsigned long clear,
			const char *what, vs_err_t *err)
{
	unsigned long flags = (current_mount_flags(target) & ~clear) | set;
	if (mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | flags, NULL) < 0)
		return vs_err(err, errno, "remount `%s`", what);
	return 0;
}

static const unsigned long mount_flag_mask = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC |
					     MS_SYNCHRONOUS | MS_DIRSYNC | MS_MANDLOCK |
					     MS_NOATIME | MS_NODIRATIME | MS_RELATIME |
					     MS_STRICTATIME | MS_LAZYTIME | MS_SILENT;

/* A path fd opened before a mount still names what the mount covers: flags of the
 * new mount are changed through a fresh open of its destination. */
static int remount_in_root(int rootfd, const char *dest, unsigned long set, unsigned long clear,
			   vs_err_t *err)
{
	cleanup_close int fd = open_in_root(rootfd, dest, false, false, err);
	if (fd < 0)
		return -1;
	char target[64];
	fd_path(target, fd);
	return remount_bind(target, set, clear, dest, err);
}

bool rootfs_has_idmapped(const struct spec *s)
{
	for (size_t i = 0; i < s->n_mounts; i++)
		if (s->mounts[i].idmap)
			return true;
	return false;
}

/* The idmap and ridmap options without mappings of their own take the container's. */
static int make_idmapped(const struct spec *s, const struct spec_mount *m, int tree,
			 vs_err_t *err)
{
	const struct spec_id_mapping *u = m->uid_mappings, *g = m->gid_mappings;
	size_t nu = m->n_uid_mappings, ng = m->n_gid_mappings;
	if (!nu) {
		u = s->uid_mappings, nu = s->n_uid_mappings;
		g = s->gid_mappings, ng = s->n_gid_mappings;
	}
	if (!nu || !ng)
		return vs_err(err, 0, "idmap: needs uidMappings and gidMappings, on the mount or "
				      "for the container's user namespace");
	cleanup_close int userns = idmap_userns_open(u, nu, g, ng, err);
	if (userns < 0)
		return vs_err_wrap(err, "idmap");
	struct mount_attr attr = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)userns};
	if (mount_setattr(tree, "", AT_EMPTY_PATH | (m->idmap_recursive ? AT_RECURSIVE : 0), &attr,
			  sizeof(attr)) < 0)
		return vs_err(err, errno, "idmap `%s` (mount_setattr MOUNT_ATTR_IDMAP)", m->source);
	return 0;
}

int rootfs_open_bind_sources(const struct spec *s, int **fds, vs_err_t *err)
{
	*fds = calloc(s->n_mounts ? s->n_mounts : 1, sizeof(**fds));
	if (!*fds)
		return vs_err(err, ENOMEM, "mounts");
	for (size_t i = 0; i < s->n_mounts; i++)
		(*fds)[i] = -1;
	for (size_t i = 0; i < s->n_mounts; i++) {
		const struct spec_mount *m = &s->mounts[i];
		if (!m->bind)
			continue;
		unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (m->recursive ? AT_RECURSIVE : 0);
		(*fds)[i] = open_tree(AT_FDCWD, m->source, flags);
		/* a rootless runtime may not clone a tree of its own mount namespace: the init
		 * binds such a source by path from inside its user namespace (only a source
		 * readable by the caller, as with runc) */
		if ((*fds)[i] < 0 && errno == EPERM && !m->idmap && rootless())
			continue;
		if ((*fds)[i] < 0 || (m->idmap && make_idmapped(s, m, (*fds)[i], err) < 0)) {
			if ((*fds)[i] < 0)
				vs_err(err, errno, "open the bind source `%s`", m->source);
			vs_err_wrap(err, "mounts[%zu]", i);
			rootfs_close_bind_sources(*fds, s->n_mounts);
			*fds = NULL;
			return -1;
		}
	}
	return 0;
}

void rootfs_close_bind_sources(int *fds, size_t n)
{
	for (size_t i = 0; fds && i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
}

static int mount_bind(const struct spec_mount *m, int source_fd, int rootfd, int dest,
		      const char *target, vs_err_t *err)
{
	if (source_fd >= 0) {
		if (move_mount(source_fd, "", dest, "",
			       MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
			return vs_err(err, errno, "bind `%s` on `%s`", m->source, m->destination);
	} else if (mount(m->source, target, NULL, MS_BIND | (m->recursive ? MS_REC : 0), NULL) < 0) {
		return vs_err(err, errno, "bind `%s` on `%s`", m->source, m->destination);
	}
	if ((m->flags & mount_flag_mask) || (m->clear_flags & mount_flag_mask))
		return remount_in_root(rootfd, m->destination, m->flags & mount_flag_mask,
				       m->clear_flags, err);
	return 0;
}

/* /sys/fs/cgroup in the container: its own cgroup in each hierarchy, bound from the
 * host, so it sees its limits and nothing of its neighbours. */
enum { OWN_MAX = 32 };
struct own_cgroups {
	struct cgroup_mount m[OWN_MAX];
	char *text[2 * OWN_MAX];
	size_t n;
};

static void own_cgroups_free(struct own_cgroups *o)
{
	for (size_t i = 0; i < 2 * o->n; i++)
		free(o->text[i]);
	o->n = 0;
}

/* A rootless container that got no cgroup sees the one it runs in, its caller's, in
 * each hierarchy, as crun shows it: /proc/self/cgroup names them ("4:memory:/user",
 * "1:name=systemd:/user", "0::/user" for cgroup2: "unified" on a hybrid host). */
static int own_cgroups(struct own_cgroups *o, vs_err_t *err)
{
	cleanup_free char *text = NULL;
	if (vs_read_file("/proc/self/cgroup", 65536, &text, NULL, err) < 0)
		return vs_err_wrap(err, "the container's cgroups (it has none of its own)");
	struct stat unified;
	bool hybrid = stat("/sys/fs/cgroup/unified/cgroup.procs", &unified) == 0;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line && o->n < OWN_MAX;
	     line = strtok_r(NULL, "\n", &save)) {
		char *ctrls = strchr(line, ':');
		char *path = ctrls ? strchr(ctrls + 1, ':') : NULL;
		if (!path)
			continue;
		*path++ = '\0';
		ctrls++;
		bool v2 = !*ctrls;
		if (strncmp(ctrls, "name=", 5) == 0)
			ctrls += 5;
		const char *name = v2 ? (hybrid ? "unified" : "") : ctrls;
		char *host_dir = NULL, *dup = strdup(name);
		if (!dup || asprintf(&host_dir, "/sys/fs/cgroup%s%s%s", *name ? "/" : "", name,
				     path) < 0) {
			free(dup);
			return vs_err(err, ENOMEM, "cgroup mount");
		}
		o->text[2 * o->n] = dup;
		o->text[2 * o->n + 1] = host_dir;
		o->m[o->n++] = (struct cgroup_mount){.name = dup, .host_dir = host_dir,
						     .fstype = v2 ? "cgroup2" : "cgroup"};
	}
	return 0;
}

static int mount_cgroup(const struct spec_mount *m, const struct cgroup *cg, int rootfd,
			const char *target, vs_err_t *err)
{
	const struct cgroup_mount *cm = NULL;
	size_t n = cg ? cgroup_mounts(cg, &cm) : 0;
	__attribute__((cleanup(own_cgroups_free))) struct own_cgroups own = {.n = 0};
	if (cg && n == 0 && rootless()) {
		if (own_cgroups(&own, err) < 0)
			return -1;
		cm = own.m;
		n = own.n;
	}
	unsigned long ro = m->flags & MS_RDONLY;
	unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
	if (n == 1 && strcmp(cm[0].fstype, "cgroup2") == 0) {
		if (mount(cm[0].host_dir, target, NULL, MS_BIND | MS_REC, NULL) < 0)
			return vs_err(err, errno, "bind cgroup `%s`", cm[0].host_dir);
		return remount_in_root(rootfd, m->destination, flags | ro, 0, err);
	}
	if (mount("tmpfs", target, "tmpfs", flags, "mode=755") < 0)
		return vs_err(err, errno, "mount tmpfs on `%s`", m->destination);
	for (size_t i = 0; i < n; i++) {
		cleanup_free char *sub = NULL;
		if (asprintf(&sub, "%s/%s", m->destination, cm[i].name) < 0)
			return vs_err(err, ENOMEM, "cgroup mount");
		cleanup_close int fd = open_in_root(rootfd, sub, true, false, err);
		if (fd < 0)
			return -1;
		char t[64];
		fd_path(t, fd);
		if (mount(cm[i].host_dir, t, NULL, MS_BIND | MS_REC, NULL) < 0)
			return vs_err(err, errno, "bind cgroup `%s` on `%s`", cm[i].host_dir, sub);
		if (remount_in_root(rootfd, sub, flags | ro, 0, err) < 0)
			return -1;
	}
	if (!ro)
		return 0;
	cleanup_close int fd = open_in_root(rootfd, m->destination, false, false, err);
	if (fd < 0)
		return -1;
	char t[64];
	fd_path(t, fd);
	if (mount(NULL, t, NULL, MS_REMOUNT | flags | MS_RDONLY, "mode=755") < 0)
		return vs_err(err, errno, "remount `%s` read-only", m->destination);
	return 0;
}

/* data without the options that start with prefix */
static char *strip_option(const char *data, const char *prefix)
{
	char *out = malloc(strlen(data) + 1);
	if (!out)
		return NULL;
	size_t used = 0, plen = strlen(prefix);
	for (const char *p = data; *p;) {
		const char *e = strchrnul(p, ',');
		size_t len = (size_t)(e - p);
		if (!(len >= plen && strncmp(p, prefix, plen) == 0)) {
			if (used)
				out[used++] = ',';
			memcpy(out + used, p, len);
			used += len;
		}
		p = *e ? e + 1 : e;
	}
	out[used] = '\0';
	return out;
}

static bool has_option(const char *data, const char *prefix)
{
	size_t plen = strlen(prefix);
	for (const char *p = data; p && *p;) {
		if (strncmp(p, prefix, plen) == 0)
			return true;
		p = strchrnul(p, ',');
		p = *p ? p + 1 : p;
	}
	return false;
}

/* A tmpfs without mode= takes the mode of the directory it covers, as in runc and crun
 * (the kernel's default would be 1777). */
static char *tmpfs_data(const struct spec_mount *m, int covered)
{
	struct stat st;
	if (strcmp(m->type, "tmpfs") != 0 || has_option(m->data, "mode=") ||
	    fstat(covered, &st) < 0)
		return NULL;
	char *data = NULL;
	if (asprintf(&data, "mode=%o%s%s", st.st_mode & 07777, m->data && *m->data ? "," : "",
		     m->data ? m->data : "") < 0)
		return NULL;
	return data;
}

static int mount_special(const struct spec_mount *m, int covered, const char *target,
			 vs_err_t *err)
{
	unsigned long flags = m->flags & mount_flag_mask;
	const char *source = m->source ? m->source : m->type;
	cleanup_free char *tmpfs = tmpfs_data(m, covered);
	if (mount(source, target, m->type, flags, tmpfs ? tmpfs : m->data) == 0)
		return 0;
	int e = errno;
	/* in a user namespace without its own network namespace sysfs cannot be mounted:
	 * show the host's read-only instead, as runc does */
	if (e == EPERM && strcmp(m->type, "sysfs") == 0) {
		if (mount("/sys", target, NULL, MS_BIND | MS_REC, NULL) == 0)
			return 1; /* the caller remounts it read-only */
	}
	/* an mqueue instance belongs to the user namespace owning the ipc namespace: without
	 * an ipc namespace of its own the container gets the host's, as with crun */
	if (e == EPERM && strcmp(m->type, "mqueue") == 0) {
		if (mount("/dev/mqueue", target, NULL, MS_BIND | MS_REC, NULL) == 0)
			return 0;
	}
	/* devpts' gid=5 is refused when group 5 is not mapped into a user namespace */
	if (e == EINVAL && strcmp(m->type, "devpts") == 0 && m->data && strstr(m->data, "gid=")) {
		cleanup_free char *data = strip_option(m->data, "gid=");
		if (data && mount(source, target, m->type, flags, data) == 0)
			return 0;
	}
	return vs_err(err, e, "mount %s on `%s`", m->type, m->destination);
}

static int mount_one(const struct spec *s, const struct spec_mount *m, int source_fd,
		     const struct cgroup *cg, int rootfd, vs_err_t *err)
{
	bool as_file = false;
	if (m->bind) {
		struct stat st;
		if ((source_fd >= 0 ? fstat(source_fd, &st) : stat(m->source, &st)) < 0)
			return vs_err(err, errno, "mount source `%s` for `%s`", m->source,
				      m->destination);
		as_file = !S_ISDIR(st.st_mode);
	}
	cleanup_close int fd = open_in_root(rootfd, m->destination, true, as_file, err);
	if (fd < 0)
		return -1;
	char target[64];
	fd_path(target, fd);
	int rc;
	if (m->bind)
		rc = mount_bind(m, source_fd, rootfd, fd, target, err);
	else if (strcmp(m->type, "cgroup") == 0 || strcmp(m->type, "cgroup2") == 0)
		rc = mount_cgroup(m, cg, rootfd, target, err);
	else
		rc = mount_special(m, fd, target, err);
	if (rc < 0)
		return -1;
	if (rc == 1 && remount_in_root(rootfd, m->destination, (m->flags & mount_flag_mask) | MS_RDONLY,
				       0, err) < 0)
		return -1;
	if (m->rattr_set || m->rattr_clr) {
		cleanup_close int nfd = open_in_root(rootfd, m->destination, false, false, err);
		struct mount_attr attr = {.attr_set = m->rattr_set, .attr_clr = m->rattr_clr};
		/* the atime modes are one field: clearing it first is how a mode is set */
		if (attr.attr_set & MOUNT_ATTR__ATIME)
			attr.attr_clr |= MOUNT_ATTR__ATIME;
		if (nfd < 0)
			return -1;
		if (mount_setattr(nfd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
			return vs_err(err, errno, "set the recursive options of `%s`",
				      m->destination);
	}
	if (m->propagation) {
		/* the path now names the new mount: reopen it to set propagation on it */
		cleanup_close int nfd = open_in_root(rootfd, m->destination, false, false, err);
		if (nfd < 0)
			return -1;
		fd_path(target, nfd);
		if (mount(NULL, target, NULL, m->propagation, NULL) < 0)
			return vs_err(err, errno, "set propagation of `%s`", m->destination);
	}
	(void)s;
	return 0;
}

/* No mount namespace of its own: the container shares the runtime's, and only a chroot
 * can give it its rootfs (the spec: an unlisted namespace is inherited, as runc and crun
 * run it). Anything that would mount would change the runtime's view: refused. */
static bool shares_mount_ns(const struct spec *s)
{
	return !s->ns[NS_MNT].enabled;
}

int rootfs_check_shared_mount_ns(const struct spec *s, vs_err_t *err)
{
	static const char why[] = "needs a mount namespace (add {\"type\": \"mount\"} to "
				  "linux.namespaces)";
	if (!shares_mount_ns(s))
		return 0;
	if (s->n_mounts)
		return vs_err(err, 0, "mounts: %s", why);
	if (s->masked_paths && s->masked_paths[0])
		return vs_err(err, 0, "linux.maskedPaths: %s", why);
	if (s->readonly_paths && s->readonly_paths[0])
		return vs_err(err, 0, "linux.readonlyPaths: %s", why);
	if (s->root_readonly)
		return vs_err(err, 0, "root.readonly: %s", why);
	if (s->rootfs_propagation)
		return vs_err(err, 0, "linux.rootfsPropagation: %s", why);
	if (s->n_devices)
		return vs_err(err, 0, "linux.devices: %s", why);
	return 0;
}

static int make_cwd(const struct spec *s, int rootfd, vs_err_t *err)
{
	/* runc and crun make a missing cwd (as mkdir -p), after the mounts it may be under */
	cleanup_close int cwd = open_in_root(rootfd, s->process.cwd, true, false, err);
	return cwd < 0 ? vs_err_wrap(err, "process.cwd") : 0;
}

int rootfs_prepare(const struct spec *s, const struct cgroup *cg, bool in_userns,
		   const int *bind_sources, vs_err_t *err)
{
	if (shares_mount_ns(s)) {
		cleanup_close int rootfd = open(s->root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (rootfd < 0)
			return vs_err(err, errno, "open the rootfs `%s`", s->root_path);
		return make_cwd(s, rootfd, err);
	}
	/* never let our mounts reach the host; rslave keeps host mounts flowing in */
	unsigned long prop = s->rootfs_propagation ? s->rootfs_propagation : MS_SLAVE | MS_REC;
	/* applied to the rootfs itself after pivot: shared would leak our mounts to the
	 * host, and an unbindable / could not be bound as the rootfs below */
	if (prop & (MS_SHARED | MS_UNBINDABLE))
		prop = MS_SLAVE | MS_REC;
	if (mount(NULL, "/", NULL, prop | MS_REC, NULL) < 0)
		return vs_err(err, errno, "make / %s", "a slave mount");
	struct stat st;
	if (stat(s->root_path, &st) < 0)
		return vs_err(err, errno, "root.path `%s`", s->root_path);
	if (!S_ISDIR(st.st_mode))
		return vs_err(err, ENOTDIR, "root.path `%s`", s->root_path);
	/* pivot_root needs the new root to be a mount point */
	if (mount(s->root_path, s->root_path, NULL, MS_BIND | MS_REC, NULL) < 0)
		return vs_err(err, errno, "bind the rootfs `%s`", s->root_path);
	cleanup_close int rootfd = open(s->root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return vs_err(err, errno, "open the rootfs `%s`", s->root_path);
	bool dev_mounted = false;
	for (size_t i = 0; i < s->n_mounts; i++) {
		if (mount_one(s, &s->mounts[i], bind_sources ? bind_sources[i] : -1, cg, rootfd,
			      err) < 0)
			return vs_err_wrap(err, "mounts[%zu]", i);
		if (strcmp(s->mounts[i].destination, "/dev") == 0)
			dev_mounted = true;
	}
	if (devices_setup(s, rootfd, dev_mounted, in_userns, err) < 0)
		return -1;
	return make_cwd(s, rootfd, err);
}

int rootfs_pivot(const struct spec *s, bool no_pivot, vs_err_t *err)
{
	if (chdir(s->root_path) < 0)
		return vs_err(err, errno, "chdir to the rootfs `%s`", s->root_path);
	if (shares_mount_ns(s)) {
		if (chroot(".") < 0)
			return vs_err(err, errno, "chroot to the rootfs `%s`", s->root_path);
	} else if (no_pivot) {
		if (mount(s->root_path, "/", NULL, MS_MOVE, NULL) < 0)
			return vs_err(err, errno, "move the rootfs to /");
		if (chroot(".") < 0)
			return vs_err(err, errno, "chroot to the rootfs");
	} else {
		/* pivot onto itself: the old root ends up stacked under "." and is detached */
		if (syscall(SYS_pivot_root, ".", ".") < 0)
			return vs_err(err, errno, "pivot_root to `%s`", s->root_path);
		if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
			return vs_err(err, errno, "make the old root a slave");
		if (umount2(".", MNT_DETACH) < 0)
			return vs_err(err, errno, "detach the old root");
	}
	if (chdir("/") < 0)
		return vs_err(err, errno, "chdir /");
	return 0;
}

static int mask_path(const char *p, vs_err_t *err)
{
	struct stat st;
	if (lstat(p, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return vs_err(err, errno, "linux.maskedPaths: `%s`", p);
	}
	int rc;
	if (S_ISDIR(st.st_mode))
		rc = mount("tmpfs", p, "tmpfs", MS_RDONLY, "size=0");
	else
		rc = mount("/dev/null", p, NULL, MS_BIND, NULL);
	if (rc < 0 && errno != ENOENT)
		return vs_err(err, errno, "linux.maskedPaths: mask `%s`", p);
	return 0;
}

static int readonly_path(const char *p, vs_err_t *err)
{
	if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0) {
		if (errno == ENOENT)
			return 0;
		return vs_err(err, errno, "linux.readonlyPaths: bind `%s`", p);
	}
	if (remount_bind(p, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, 0, p, err) < 0)
		return vs_err_wrap(err, "linux.readonlyPaths");
	return 0;
}

int rootfs_finish(const struct spec *s, vs_err_t *err)
{
	for (char **p = s->masked_paths; p && *p; p++)
		if (mask_path(*p, err) < 0)
			return -1;
	for (char **p = s->readonly_paths; p && *p; p++)
		if (readonly_path(*p, err) < 0)
			return -1;
	if (s->root_readonly && remount_bind("/", MS_RDONLY, 0, "/ (root.readonly)", err) < 0)
		return -1;
	if (s->rootfs_propagation && mount(NULL, "/", NULL, s->rootfs_propagation, NULL) < 0)
		return vs_err(err, errno, "linux.rootfsPropagation");
	return 0;
}
