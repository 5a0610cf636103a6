#include "oci/console.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <unistd.h>

#include "base/pty.h"
#include "base/util.h"

int console_setup(int sock, const struct spec_process *p, bool bind_console, vs_err_t *err)
{
	char name[128];
	cleanup_close int master = -1;
	cleanup_close int slave = -1;
	if (vs_pty_open(p->console_height, p->console_width, &master, &slave, name, sizeof(name),
			err) < 0)
		return vs_err_wrap(err, "the container's terminal");
	if (bind_console && access("/dev/console", F_OK) == 0 &&
	    mount(name, "/dev/console", NULL, MS_BIND, NULL) < 0)
		return vs_err(err, errno, "bind `%s` on /dev/console", name);
	if (vs_console_send(sock, master, err) < 0)
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
