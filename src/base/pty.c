#include "base/pty.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "base/util.h"

int vs_console_connect(const char *path, vs_err_t *err)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(addr.sun_path))
		return vs_err(err, ENAMETOOLONG, "--console-socket `%s`", path);
	strcpy(addr.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return vs_err(err, errno, "--console-socket: socket");
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int e = errno;
		close(fd);
		return vs_err(err, e, "--console-socket: connect to `%s`", path);
	}
	return fd;
}

int vs_pty_open(unsigned rows, unsigned cols, int *master, int *slave, char *name, size_t n,
		vs_err_t *err)
{
	cleanup_close int m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return vs_err(err, errno, "open /dev/ptmx");
	if (unlockpt(m) < 0)
		return vs_err(err, errno, "unlockpt");
	if (ptsname_r(m, name, n) != 0)
		return vs_err(err, errno, "ptsname");
	if (rows || cols) {
		struct winsize ws = {.ws_row = (unsigned short)rows,
				     .ws_col = (unsigned short)cols};
		ioctl(m, TIOCSWINSZ, &ws);
	}
	int s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0)
		return vs_err(err, errno, "open `%s`", name);
	*master = steal_fd(m);
	*slave = s;
	return 0;
}

int vs_console_send(int sock, int master, vs_err_t *err)
{
	static const char name[] = "/dev/ptmx";
	if (vs_send_fd(sock, name, strlen(name), master) < 0)
		return vs_err(err, errno, "send the pty master over the console socket");
	return 0;
}

int vs_console_receive(int sock, vs_err_t *err)
{
	char name[64];
	int fd;
	ssize_t n = vs_recv_fd(sock, name, sizeof(name), &fd);
	if (n < 0)
		return vs_err(err, errno, "receive the pty master from the console socket");
	if (n == 0 || fd < 0) {
		if (fd >= 0)
			close(fd);
		return vs_err(err, 0, "the console socket brought no pty master");
	}
	return fd;
}
