/* Bind mounts of a container in a microVM: the host's side (which source reaches the guest
 * how, the shares' virtiofsd, the files' frames) and the guest's (mounting the shares and
 * writing the files where the guest's config.json now says). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "vmc/mounts.h"

static bool is_word(json_t *s, const char *word)
{
	return json_is_string(s) && strcmp(json_string_value(s), word) == 0;
}

static bool is_bind(json_t *mount)
{
	if (is_word(json_object_get(mount, "type"), "bind"))
		return true;
	json_t *opts = json_object_get(mount, "options");
	for (size_t i = 0; i < json_array_size(opts); i++)
		if (is_word(json_array_get(opts, i), "bind") ||
		    is_word(json_array_get(opts, i), "rbind"))
			return true;
	return false;
}

/* the last of ro and rw wins, as in mount(8) */
static bool readonly(json_t *mount)
{
	bool ro = false;
	json_t *opts = json_object_get(mount, "options");
	for (size_t i = 0; i < json_array_size(opts); i++) {
		if (is_word(json_array_get(opts, i), "ro"))
			ro = true;
		else if (is_word(json_array_get(opts, i), "rw"))
			ro = false;
	}
	return ro;
}

static const char *kind(mode_t m)
{
	return S_ISCHR(m)    ? "character device"
	       : S_ISBLK(m)  ? "block device"
	       : S_ISSOCK(m) ? "socket"
	       : S_ISFIFO(m) ? "fifo"
			     : "special file";
}

/* /dev/shm shared with the host means nothing across a VM, and a virtio-fs share (direct
 * I/O, cache=none) can't be mapped MAP_SHARED: the guest's own tmpfs, podman's size */
static int as_guest_shm(json_t *m)
{
	json_t *opts =
	    json_pack("[s,s,s,s,s]", "nosuid", "nodev", "noexec", "mode=1777", "size=65536k");
	if (!opts || json_object_set_new(m, "type", json_string("tmpfs")) < 0 ||
	    json_object_set_new(m, "source", json_string("shm")) < 0 ||
	    json_object_set_new(m, "options", opts) < 0)
		return -1;
	return 0;
}

static int plan_one(json_t *m, size_t i, const char *bundle, struct vmc_binds *b, vs_err_t *err)
{
	const char *src = json_string_value(json_object_get(m, "source"));
	const char *dst = json_string_value(json_object_get(m, "destination"));
	if (!src || !dst)
		return vs_err(err, 0, "mounts[%zu]: a bind mount needs a source and a destination",
			      i);
	if (strcmp(dst, "/dev/shm") == 0)
		return as_guest_shm(m) < 0 ? vs_err(err, ENOMEM, "mounts[%zu]", i) : 0;
	char path[4096], guest[64];
	if (src[0] == '/')
		snprintf(path, sizeof(path), "%s", src);
	else
		snprintf(path, sizeof(path), "%s/%s", bundle, src);
	struct stat sb;
	if (stat(path, &sb) < 0)
		return vs_err(err, errno, "mounts[%zu]: the source of the bind mount on `%s`: `%s`",
			      i, dst, path);
	if (S_ISDIR(sb.st_mode)) {
		if (b->n_shares == VMC_MAX_SHARES)
			return vs_err(err, 0,
				      "mounts[%zu]: `%s` on `%s`: at most %d directories can be "
				      "bind-mounted into a microVM (each is a virtio-fs share "
				      "with a virtiofsd of its own)",
				      i, path, dst, VMC_MAX_SHARES);
		struct vmc_share *s = &b->shares[b->n_shares];
		if (!(s->source = strdup(path)))
			return vs_err(err, ENOMEM, "mounts[%zu]", i);
		s->readonly = readonly(m);
		snprintf(guest, sizeof(guest), VMC_GUEST_SHARES "/%zu", b->n_shares++);
	} else if (S_ISREG(sb.st_mode)) {
		if (b->n_files == VMC_MAX_FILES)
			return vs_err(err, 0,
				      "mounts[%zu]: `%s` on `%s`: at most %d files can be "
				      "bind-mounted into a microVM (each is copied into it)",
				      i, path, dst, VMC_MAX_FILES);
		if ((size_t)sb.st_size > VMC_MAX_FILE_SIZE)
			return vs_err(err, 0,
				      "mounts[%zu]: `%s` on `%s`: %lld bytes; a file bind-mounted "
				      "into a microVM is copied into it, at most %u KiB",
				      i, path, dst, (long long)sb.st_size, VMC_MAX_FILE_SIZE >> 10);
		struct vmc_file *f = &b->files[b->n_files];
		if (vs_read_file(path, VMC_MAX_FILE_SIZE + 1, &f->data, &f->len, err) < 0)
			return vs_err_wrap(err, "mounts[%zu]: the bind mount on `%s`", i, dst);
		if (f->len > VMC_MAX_FILE_SIZE)
			return vs_err(err, 0, "mounts[%zu]: `%s` grew beyond %u KiB while read", i,
				      path, VMC_MAX_FILE_SIZE >> 10);
		snprintf(guest, sizeof(guest), VMC_GUEST_FILES "/%zu", b->n_files++);
	} else {
		return vs_err(err, 0,
			      "mounts[%zu]: bind mount of `%s` on `%s`: a %s can't reach a "
			      "microVM (only directories and regular files can)",
			      i, path, dst, kind(sb.st_mode));
	}
	if (json_object_set_new(m, "source", json_string(guest)) < 0)
		return vs_err(err, ENOMEM, "mounts[%zu]", i);
	return 0;
}

int vmc_binds_plan(json_t *config, const char *bundle, struct vmc_binds *b, vs_err_t *err)
{
	memset(b, 0, sizeof(*b));
	json_t *mounts = json_object_get(config, "mounts");
	size_t i;
	json_t *m;
	json_array_foreach(mounts, i, m)
	{
		if (is_bind(m) && plan_one(m, i, bundle, b, err) < 0) {
			vmc_binds_release(b);
			return -1;
		}
	}
	return 0;
}

void vmc_binds_release(struct vmc_binds *b)
{
	for (size_t i = 0; i < b->n_shares; i++)
		free(b->shares[i].source);
	for (size_t i = 0; i < b->n_files; i++)
		free(b->files[i].data);
	memset(b, 0, sizeof(*b));
}

/* ---- host: the shares' virtiofsd */

/* In virtiofsd's child: source read-only in a mount namespace of its own; virtiofsd's own
 * sandbox then binds it again, which keeps the flag. */
static int read_only_view(const char *source)
{
	struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount(source, source, NULL, MS_BIND | MS_REC, NULL) < 0 ||
	    mount_setattr(AT_FDCWD, source, AT_RECURSIVE, &attr, sizeof(attr)) < 0) {
		dprintf(2, "vessel: a read-only view of %s for virtiofsd: %s\n", source,
			strerror(errno));
		return -1;
	}
	return 0;
}

pid_t vmc_virtiofsd_start(const char *log_dir, const char *socket, const char *source, bool ro)
{
	char sock[4200], src[4200], log[4200];
	snprintf(sock, sizeof(sock), "--socket-path=%s", socket);
	snprintf(src, sizeof(src), "source=%s", source);
	snprintf(log, sizeof(log), "%s/virtiofsd.log", log_dir);
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	/* the VMM is its only front-end: it goes with it */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	if (ro && read_only_view(source) < 0)
		_exit(126);
	execl(VMC_VIRTIOFSD, VMC_VIRTIOFSD, sock, "-o", src, "-o", "cache=none", (char *)NULL);
	dprintf(2, "exec %s: %s\n", VMC_VIRTIOFSD, strerror(errno));
	_exit(127);
}

int vmc_wait_socket(const char *path, pid_t pid)
{
	for (int i = 0; i < 1000; i++) {
		struct stat sb;
		if (stat(path, &sb) == 0 && S_ISSOCK(sb.st_mode))
			return 0;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -1;
		struct timespec d = {0, 10000000};
		nanosleep(&d, NULL);
	}
	return -1;
}

void vmc_share_socket(char *out, size_t n, const char *sockets, size_t i)
{
	snprintf(out, n, "%s/bind%zu.sock", sockets, i);
}

int vmc_binds_start(const struct vmc_binds *b, const char *log_dir, const char *sockets,
		    char **fs_args, vs_err_t *err)
{
	for (size_t i = 0; i < b->n_shares; i++) {
		char sock[128];
		vmc_share_socket(sock, sizeof(sock), sockets, i);
		pid_t pid =
		    vmc_virtiofsd_start(log_dir, sock, b->shares[i].source, b->shares[i].readonly);
		if (pid < 0 || vmc_wait_socket(sock, pid) < 0)
			return vs_err(err, 0,
				      "virtiofsd for the bind mount of `%s` did not start (see "
				      "virtiofsd.log)",
				      b->shares[i].source);
		if (asprintf(&fs_args[i], "tag=bind%zu,socket=%s", i, sock) < 0)
			return vs_err(err, ENOMEM, "--fs");
	}
	return 0;
}

int vmc_binds_send(int conn, const struct vmc_binds *b, vs_err_t *err)
{
	for (size_t i = 0; i < b->n_files; i++)
		if (vmc_send(conn, VMC_FILE, b->files[i].data, (uint32_t)b->files[i].len, err) < 0)
			return -1;
	return 0;
}

void vmc_binds_cleanup(const char *sockets)
{
	for (size_t i = 0; i < VMC_MAX_SHARES; i++) {
		char sock[128];
		vmc_share_socket(sock, sizeof(sock), sockets, i);
		unlink(sock);
	}
}

/* ---- guest */

static int count(json_t *msg, const char *key, size_t max, size_t *out, vs_err_t *err)
{
	json_t *v = json_object_get(msg, key);
	*out = 0;
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (json_int_t)max < json_integer_value(v))
		return vs_err(err, 0, "CONFIG: %s must be an integer from 0 to %zu", key, max);
	*out = (size_t)json_integer_value(v);
	return 0;
}

int vmc_binds_counts(json_t *msg, size_t *shares, size_t *files, vs_err_t *err)
{
	if (count(msg, "shares", VMC_MAX_SHARES, shares, err) < 0 ||
	    count(msg, "files", VMC_MAX_FILES, files, err) < 0)
		return -1;
	return 0;
}

static int write_file(const char *path, const struct vmc_frame *f, vs_err_t *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return vs_err(err, errno, "create %s", path);
	int rc = vs_write_all(fd, f->payload, f->len, err);
	close(fd);
	return rc < 0 ? vs_err_wrap(err, "write %s", path) : 0;
}

int vmc_binds_guest(json_t *msg, int conn, struct vmc_reader *rd, vs_err_t *err)
{
	size_t shares, files;
	if (vmc_binds_counts(msg, &shares, &files, err) < 0)
		return -1;
	char path[64], tag[32];
	if (shares)
		mkdir(VMC_GUEST_SHARES, 0755);
	for (size_t i = 0; i < shares; i++) {
		snprintf(path, sizeof(path), VMC_GUEST_SHARES "/%zu", i);
		snprintf(tag, sizeof(tag), "bind%zu", i);
		mkdir(path, 0755);
		if (mount(tag, path, "virtiofs", 0, NULL) < 0)
			return vs_err(err, errno,
				      "mount the share of a bind mount (virtiofs tag %s) on %s",
				      tag, path);
	}
	if (files)
		mkdir(VMC_GUEST_FILES, 0755);
	for (size_t i = 0; i < files; i++) {
		struct vmc_frame f;
		int rc = vmc_read_frame(conn, rd, &f, err);
		if (rc == 0)
			return vs_err(err, 0,
				      "the host closed the connection before FILE %zu of %zu",
				      i + 1, files);
		if (rc < 0)
			return -1;
		if (f.type != VMC_FILE)
			return vs_err(err, 0, "agent protocol: %s where FILE %zu of %zu belongs",
				      vmc_type_name(f.type), i + 1, files);
		if (f.len > VMC_MAX_FILE_SIZE)
			return vs_err(err, 0, "agent protocol: FILE of %u bytes (at most %u)",
				      f.len, VMC_MAX_FILE_SIZE);
		snprintf(path, sizeof(path), VMC_GUEST_FILES "/%zu", i);
		if (write_file(path, &f, err) < 0)
			return -1;
	}
	return 0;
}
