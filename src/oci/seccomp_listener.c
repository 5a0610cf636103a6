#include "oci/seccomp_listener.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/util.h"
#include "oci/sync.h"

static int send_to_listener(const char *path, const char *text, int fd, vs_err_t *err)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(addr.sun_path))
		return vs_err(err, ENAMETOOLONG, "`%s`", path);
	memcpy(addr.sun_path, path, strlen(path) + 1);
	cleanup_close int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return vs_err(err, errno, "socket");
	if (connect(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return vs_err(err, errno, "connect to `%s`", path);
	size_t len = strlen(text);
	ssize_t n = vs_send_fd(sock, text, len, fd);
	if (n < 0)
		return vs_err(err, errno, "send to `%s`", path);
	/* the fd went with the first byte; the rest of the JSON follows plainly */
	if ((size_t)n < len && vs_write_all(sock, text + n, len - (size_t)n, err) < 0)
		return vs_err_wrap(err, "send to `%s`", path);
	return 0;
}

int seccomp_listener_forward(const struct seccomp_spec *s, int sync_fd, json_t *state, pid_t pid,
			     vs_err_t *err)
{
	cleanup_close int fd = -1;
	if (sync_expect_fd(sync_fd, SYNC_SECCOMP, &fd, err) < 0)
		return -1;
	json_t *msg = json_pack("{s:s, s:[s], s:i, s:s, s:O}", "ociVersion", "1.2.0", "fds",
				"seccompFd", "pid", (json_int_t)pid, "metadata",
				seccomp_listener_metadata(s), "state", state);
	cleanup_free char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
	json_decref(msg);
	if (!text)
		return vs_err(err, ENOMEM, "linux.seccomp.listenerPath");
	if (send_to_listener(seccomp_listener_path(s), text, fd, err) < 0)
		return vs_err_wrap(err, "linux.seccomp.listenerPath");
	return 0;
}
