#include "oci/sync.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"

int sync_send(int fd, enum sync_type type, vs_err_t *err)
{
	char b = (char)type;
	while (send(fd, &b, 1, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return vs_err(err, errno, "sync with container init");
	return 0;
}

void sync_send_error(int fd, const char *msg)
{
	char buf[4096];
	buf[0] = SYNC_ERROR;
	size_t n = strlen(msg);
	if (n > sizeof(buf) - 1)
		n = sizeof(buf) - 1;
	memcpy(buf + 1, msg, n);
	while (send(fd, buf, n + 1, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

int sync_expect(int fd, enum sync_type type, vs_err_t *err)
{
	char buf[4097];
	ssize_t n;
	while ((n = recv(fd, buf, sizeof(buf) - 1, 0)) < 0)
		if (errno != EINTR)
			return vs_err(err, errno, "sync with container init");
	if (n == 0)
		return vs_err(err, 0, "the container init exited during setup");
	buf[n] = '\0';
	if (buf[0] == SYNC_ERROR)
		return vs_err(err, 0, "%s", buf + 1);
	if (buf[0] != (char)type)
		return vs_err(err, 0, "sync with container init: expected `%c`, got `%c`",
			      (char)type, buf[0]);
	return 0;
}

int sync_send_fd(int sock, enum sync_type type, int fd, vs_err_t *err)
{
	char b = (char)type;
	if (vs_send_fd(sock, &b, 1, fd) < 0)
		return vs_err(err, errno, "sync with the runtime: send an fd");
	return 0;
}

int sync_expect_fd(int sock, enum sync_type type, int *fd, vs_err_t *err)
{
	char buf[4097];
	ssize_t n = vs_recv_fd(sock, buf, sizeof(buf) - 1, fd);
	if (n < 0)
		return vs_err(err, errno, "sync with container init");
	if (n == 0)
		return vs_err(err, 0, "the container init exited during setup");
	buf[n] = '\0';
	if (buf[0] == SYNC_ERROR || buf[0] != (char)type || *fd < 0) {
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		if (buf[0] == SYNC_ERROR)
			return vs_err(err, 0, "%s", buf + 1);
		return vs_err(err, 0,
			      "sync with container init: expected `%c` with an fd, got `%c`",
			      (char)type, buf[0]);
	}
	return 0;
}

void sync_prefer_init_error(int fd, vs_err_t *err)
{
	char buf[4097];
	ssize_t n;
	/* the init writes its error and exits: give it a moment to get there */
	for (int tries = 0; tries < 100; tries++) {
		n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
		if (n > 0 && buf[0] == SYNC_ERROR) {
			buf[n] = '\0';
			vs_err_free(err);
			vs_err(err, 0, "%s", buf + 1);
			return;
		}
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return;
		if (n < 0) {
			struct timespec d = {0, 1000000};
			nanosleep(&d, NULL);
		}
	}
}

int sync_die_with_runtime(int fd, vs_err_t *err)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		return vs_err(err, errno, "prctl(PR_SET_PDEATHSIG)");
	/* the runtime's end closed: it died before we armed the signal. Queued messages do
	 * not hide it: a closed peer sets POLLHUP on a SOCK_SEQPACKET pair at once. */
	struct pollfd p = {.fd = fd, .events = POLLIN};
	while (poll(&p, 1, 0) < 0)
		if (errno != EINTR)
			return vs_err(err, errno, "poll the sync socket");
	if (p.revents & POLLHUP)
		return vs_err(err, 0, "the runtime exited during setup");
	return 0;
}

void sync_outlive_runtime(void)
{
	prctl(PR_SET_PDEATHSIG, 0);
}
