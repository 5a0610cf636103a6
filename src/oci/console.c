#include "oci/console.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "base/util.h"

int console_connect(const char *path, vs_err_t *err)
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

static int send_fd(int sock, int fd, const char *name, vs_err_t *err)
{
	if (vs_send_fd(sock, name, strlen(name), fd) < 0)
		return vs_err(err, errno, "send the pty master over the console socket");
	return 0;
}

int console_setup(int sock, const struct spec_process *p, bool bind_console, vs_err_t *err)
{
	cleanup_close int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		return vs_err(err, errno, "open /dev/ptmx in the container");
	if (unlockpt(master) < 0)
		return vs_err(err, errno, "unlockpt");
	char name[128];
	if (ptsname_r(master, name, sizeof(name)) != 0)
		return vs_err(err, errno, "ptsname");
	if (p->console_width || p->console_height) {
		struct winsize ws = {.ws_row = (unsigned short)p->console_height,
				     .ws_col = (unsigned short)p->console_width};
		ioctl(master, TIOCSWINSZ, &ws);
	}
	cleanup_close int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		return vs_err(err, errno, "open `%s`", name);
	if (bind_console && access("/dev/console", F_OK) == 0 && mount(name, "/dev/console", NULL, MS_BIND, NULL) < 0)
		return vs_err(err, errno, "bind `%s` on /dev/console", name);
	if (send_fd(sock, master, "/dev/ptmx", err) < 0)
		return -1;
	if (setsid() < 0)
		return vs_err(err, errno, "setsid");
	if (ioctl(slave, TIOCSCTTY, 0) < 0)
		return vs_err(err, errno, "make the pty the controlling terminal");
	for (int fd = 0; fd < 3; fd++)
		if (dup2(slave, fd) < 0)
			return vs_err(err, errno, "dup2 the pty onto fd %d", fd);
	return 0;
}
