#include "oci/tty.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "base/pty.h"
#include "base/util.h"

struct tty_proxy {
	int sock;
	int master;
	bool raw;
	struct termios saved;
};

int tty_proxy_socket(struct tty_proxy **out, vs_err_t *err)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return vs_err(err, errno, "socketpair for the terminal");
	struct tty_proxy *t = calloc(1, sizeof(*t));
	if (!t) {
		close(sv[0]);
		close(sv[1]);
		return vs_err(err, ENOMEM, "terminal");
	}
	t->sock = sv[0];
	t->master = -1;
	*out = t;
	return sv[1];
}

int tty_proxy_master(const struct tty_proxy *t)
{
	return t ? t->master : -1;
}

void tty_proxy_resize(struct tty_proxy *t)
{
	struct winsize ws;
	if (t && t->master >= 0 && ioctl(0, TIOCGWINSZ, &ws) == 0)
		ioctl(t->master, TIOCSWINSZ, &ws);
}

int tty_proxy_receive(struct tty_proxy *t, vs_err_t *err)
{
	t->master = vs_console_receive(t->sock, err);
	if (t->master < 0)
		return vs_err_wrap(err, "the container's pty");
	if (isatty(0) && tcgetattr(0, &t->saved) == 0) {
		struct termios raw = t->saved;
		cfmakeraw(&raw);
		if (tcsetattr(0, TCSANOW, &raw) == 0)
			t->raw = true;
	}
	tty_proxy_resize(t);
	return 0;
}

int tty_proxy_pump(struct tty_proxy *t, int fd)
{
	char buf[8192];
	ssize_t n = read(fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 1;
	/* EIO: the last holder of the slave closed it */
	if (n <= 0)
		return 0;
	int out = fd == t->master ? 1 : t->master;
	if (vs_write_all(out, buf, (size_t)n, NULL) < 0)
		return 0;
	return 1;
}

void tty_proxy_free(struct tty_proxy *t)
{
	if (!t)
		return;
	if (t->raw)
		tcsetattr(0, TCSANOW, &t->saved);
	if (t->master >= 0)
		close(t->master);
	close(t->sock);
	free(t);
}
