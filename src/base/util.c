#include "base/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

void vs_freep(void *p)
{
	free(*(void **)p);
}

void vs_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
	*fd = -1;
}

int vs_write_all(int fd, const void *buf, size_t len, vs_err_t *err)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return vs_err(err, errno, "write");
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int vs_write_file_at(int dirfd, const char *path, const char *data, size_t len, vs_err_t *err)
{
	cleanup_close int fd = openat(dirfd, path, O_WRONLY | O_CLOEXEC | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return vs_err(err, errno, "open `%s`", path);
	if (vs_write_all(fd, data, len, err) < 0)
		return vs_err_wrap(err, "`%s`", path);
	return 0;
}

int vs_write_file(const char *path, const char *data, size_t len, vs_err_t *err)
{
	return vs_write_file_at(AT_FDCWD, path, data, len, err);
}

int vs_read_file_at(int dirfd, const char *path, size_t max, char **out, size_t *len, vs_err_t *err)
{
	cleanup_close int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vs_err(err, errno, "open `%s`", path);
	size_t cap = 4096, used = 0;
	cleanup_free char *buf = malloc(cap + 1);
	if (!buf)
		return vs_err(err, ENOMEM, "read `%s`", path);
	for (;;) {
		if (used == cap) {
			if (cap >= max)
				return vs_err(err, EFBIG, "read `%s`", path);
			cap = cap * 2 > max ? max : cap * 2;
			char *n = realloc(buf, cap + 1);
			if (!n)
				return vs_err(err, ENOMEM, "read `%s`", path);
			buf = n;
		}
		ssize_t r = read(fd, buf + used, cap - used);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return vs_err(err, errno, "read `%s`", path);
		}
		if (r == 0)
			break;
		used += (size_t)r;
	}
	buf[used] = '\0';
	if (len)
		*len = used;
	*out = steal_ptr(buf);
	return 0;
}

int vs_read_file(const char *path, size_t max, char **out, size_t *len, vs_err_t *err)
{
	return vs_read_file_at(AT_FDCWD, path, max, out, len, err);
}

int vs_mkdir_p(const char *path, mode_t mode, vs_err_t *err)
{
	cleanup_free char *p = strdup(path);
	if (!p)
		return vs_err(err, ENOMEM, "mkdir `%s`", path);
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return vs_err(err, errno, "mkdir `%s`", p);
		*s = c;
		if (c == '\0')
			break;
	}
	return 0;
}

int vs_parse_size(const char *s, uint64_t *out)
{
	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	unsigned shift = 0;
	switch (*end) {
	case '\0':
		break;
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	case 't':
	case 'T':
		shift = 40;
		break;
	default:
		return -1;
	}
	if (*end) {
		end++;
		/* accept "512MiB" / "512MB" as the same thing */
		if (*end == 'i')
			end++;
		if (*end == 'B' || *end == 'b')
			end++;
		if (*end)
			return -1;
	}
	if (shift && v > (ULLONG_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

bool vs_str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

ssize_t vs_send_fd(int sock, const void *buf, size_t len, int fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} c;
	memset(&c, 0, sizeof(c));
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr m = {.msg_iov = &iov,
			   .msg_iovlen = 1,
			   .msg_control = c.buf,
			   .msg_controllen = sizeof(c.buf)};
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &fd, sizeof(int));
	ssize_t n;
	while ((n = sendmsg(sock, &m, MSG_NOSIGNAL)) < 0)
		if (errno != EINTR)
			return -1;
	return n;
}

ssize_t vs_recv_fd(int sock, void *buf, size_t len, int *fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(4 * sizeof(int))]; /* room to see, and close, extras */
	} c;
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	struct msghdr m = {.msg_iov = &iov,
			   .msg_iovlen = 1,
			   .msg_control = c.buf,
			   .msg_controllen = sizeof(c.buf)};
	ssize_t n;
	*fd = -1;
	while ((n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC)) < 0)
		if (errno != EINTR)
			return -1;
	size_t got = 0;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		size_t nfd = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfd; i++, got++) {
			int one;
			memcpy(&one, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
			if (got == 0)
				*fd = one;
			else
				close(one);
		}
	}
	if (got > 1 || (m.msg_flags & MSG_CTRUNC)) {
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		errno = EPROTO;
		return -1;
	}
	return n;
}

char *vs_exe_dir(void)
{
	char exe[PATH_MAX];
	const char *env = getenv("VESSEL_EXE");
	if (env && *env && strlen(env) < sizeof(exe)) {
		strcpy(exe, env);
	} else {
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n < 0)
			return NULL;
		exe[n] = '\0';
	}
	char *slash = strrchr(exe, '/');
	if (!slash)
		return strdup(".");
	*slash = '\0';
	return strdup(*exe ? exe : "/");
}

static int remove_tree_on(int parent, const char *name, dev_t dev, bool top, vs_err_t *err)
{
	if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return vs_err(err, errno, "remove `%s`", name);
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : vs_err(err, errno, "open `%s`", name);
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return vs_err(err, errno, "stat `%s`", name);
	}
	if (top)
		dev = st.st_dev;
	else if (st.st_dev != dev) {
		close(fd);
		return vs_err(err, EBUSY, "remove `%s`: another file system is mounted there",
			      name);
	}
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return vs_err(err, errno, "opendir `%s`", name);
	}
	struct dirent *de;
	int rc = 0;
	while (rc == 0 && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		rc = remove_tree_on(dirfd(d), de->d_name, dev, false, err);
	}
	closedir(d);
	if (rc == 0 && unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return vs_err(err, errno, "remove `%s`", name);
	return rc;
}

int vs_remove_tree(int dirfd, const char *name, vs_err_t *err)
{
	return remove_tree_on(dirfd, name, 0, true, err);
}
