#include "vmc/term.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "base/pty.h"
#include "base/util.h"

int vmc_term_console(const char *path, unsigned rows, unsigned cols, vs_err_t *err)
{
	char name[128];
	cleanup_close int master = -1;
	cleanup_close int slave = -1;
	if (vs_pty_open(rows, cols, &master, &slave, name, sizeof(name), err) < 0)
		return vs_err_wrap(err, "the terminal on the host");
	struct termios t;
	if (tcgetattr(slave, &t) < 0)
		return vs_err(err, errno, "the terminal on the host: tcgetattr `%s`", name);
	cfmakeraw(&t);
	if (tcsetattr(slave, TCSANOW, &t) < 0)
		return vs_err(err, errno, "the terminal on the host: raw mode on `%s`", name);
	cleanup_close int sock = vs_console_connect(path, err);
	if (sock < 0 || vs_console_send(sock, master, err) < 0)
		return -1;
	/* never one of the stdio numbers the relay's callers tell from it */
	int fd = fcntl(slave, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return vs_err(err, errno, "the terminal on the host: dup `%s`", name);
	return fd;
}

void vmc_term_raw(int fd, struct vmc_term_saved *s)
{
	s->fd = fd;
	s->raw = false;
	if (!isatty(fd) || tcgetattr(fd, &s->attrs) < 0)
		return;
	struct termios raw = s->attrs;
	cfmakeraw(&raw);
	s->raw = tcsetattr(fd, TCSANOW, &raw) == 0;
}

void vmc_term_restore(struct vmc_term_saved *s)
{
	if (s->raw)
		tcsetattr(s->fd, TCSANOW, &s->attrs);
	s->raw = false;
}

bool vmc_term_resized(struct vmc_term_window *w, uint8_t payload[VMC_RESIZE_SIZE])
{
	struct winsize ws;
	if (w->fd < 0 || ioctl(w->fd, TIOCGWINSZ, &ws) < 0)
		return false;
	if (ws.ws_row == w->last.ws_row && ws.ws_col == w->last.ws_col)
		return false;
	w->last = ws;
	vmc_resize_payload(payload, ws.ws_row, ws.ws_col);
	return true;
}
