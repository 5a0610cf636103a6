#include "base/usock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static bool fill(struct sockaddr_un *sa, const char *path)
{
	*sa = (struct sockaddr_un){.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa->sun_path))
		return false;
	strcpy(sa->sun_path, path);
	return true;
}

/* A socket file at path that nobody accepts on is a leftover of a process that is gone. */
static bool stale(const struct sockaddr_un *sa)
{
	struct stat st;
	if (lstat(sa->sun_path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return false;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	bool gone =
	    connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 && errno == ECONNREFUSED;
	close(fd);
	return gone;
}

/* The private name sits beside path (same filesystem, so the move is a rename), made
 * of the pid and a counter so concurrent listeners in one directory never collide. */
static bool private_name(struct sockaddr_un *tmp, const char *path)
{
	static unsigned counter;
	const char *slash = strrchr(path, '/');
	int dirlen = slash ? (int)(slash - path + 1) : 0;
	int n = snprintf(tmp->sun_path, sizeof(tmp->sun_path), "%.*s.vs-%d-%u.sock", dirlen, path,
			 (int)getpid(), __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
	tmp->sun_family = AF_UNIX;
	return n > 0 && (size_t)n < sizeof(tmp->sun_path);
}

int vs_unix_listen(const char *path, int flags, int backlog, bool replace_stale, vs_err_t *err)
{
	struct sockaddr_un sa, tmp;
	if (!fill(&sa, path))
		return vs_err(err, ENAMETOOLONG, "socket path `%s`: longer than %zu bytes", path,
			      sizeof(sa.sun_path) - 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | flags, 0);
	if (fd < 0)
		return vs_err(err, errno, "socket for `%s`", path);
	if (replace_stale && stale(&sa))
		unlink(path);
	/* A path too long for a private name beside it keeps the plain bind and its window. */
	bool moved = private_name(&tmp, path);
	const struct sockaddr_un *at = moved ? &tmp : &sa;
	if (bind(fd, (const struct sockaddr *)at, sizeof(*at)) < 0) {
		int e = errno;
		close(fd);
		return vs_err(err, e, "bind `%s`", path);
	}
	if (listen(fd, backlog) < 0) {
		int e = errno;
		close(fd);
		unlink(at->sun_path);
		return vs_err(err, e, "listen on `%s`", path);
	}
	if (moved && renameat2(AT_FDCWD, tmp.sun_path, AT_FDCWD, path, RENAME_NOREPLACE) < 0) {
		int e = errno;
		/* a filesystem without RENAME_NOREPLACE: link() refuses an existing path too */
		if (e == EINVAL && link(tmp.sun_path, path) == 0)
			e = 0;
		unlink(tmp.sun_path);
		if (e) {
			close(fd);
			return vs_err(err, e == EEXIST ? EADDRINUSE : e, "bind `%s`", path);
		}
	}
	return fd;
}
