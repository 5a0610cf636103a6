/* The guest's serial console on vessel's stdin: the host side of COM1's receiver. */
#include "vmm/console.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <termios.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "vmm/devices/serial.h"
#include "vmm/loop.h"
#include "vmm/vm.h"

#define CTRL_A 0x01
#define RETRY_MS 10

/* The host side of COM1's receiver: stdin, paced by the UART's FIFO. */
struct console {
	struct vm *vm;
	struct serial *serial;
	struct loop *loop;
	int fd;
	bool tty, pollable, open, registered, escape;
	bool file_ready; /* a file on stdin with room for it in the FIFO: read after the wait */
	struct termios saved;
};

static void make_raw(struct console *c)
{
	if (!c->tty || tcgetattr(c->fd, &c->saved) < 0) {
		c->tty = false;
		return;
	}
	struct termios t = c->saved;
	cfmakeraw(&t);
	t.c_oflag |= OPOST; /* keep "\n" -> "\r\n" for vessel's own messages */
	tcsetattr(c->fd, TCSANOW, &t);
}

static void restore(struct console *c)
{
	if (c->tty)
		tcsetattr(c->fd, TCSANOW, &c->saved);
}

/* Feeds what fits into the UART; on a tty, Ctrl-A x stops the VM. */
static void pump(struct console *c)
{
	uint8_t buf[64];
	size_t room = serial_rx_room(c->serial);
	if (room == 0)
		return;
	if (room > sizeof(buf))
		room = sizeof(buf);
	ssize_t n = read(c->fd, buf, room);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		/* EOF on a pipe or file (or a dead tty): the guest runs on without input */
		c->open = false;
		return;
	}
	size_t out = 0;
	for (ssize_t i = 0; i < n; i++) {
		uint8_t ch = buf[i];
		if (c->tty && c->escape) {
			c->escape = false;
			if (ch == 'x' || ch == 'X') {
				vm_stop(c->vm, 128 + SIGINT, "Ctrl-A x on the console");
				return;
			}
			if (ch != CTRL_A)
				buf[out++] = CTRL_A;
		} else if (c->tty && ch == CTRL_A) {
			c->escape = true;
			continue;
		}
		buf[out++] = ch;
	}
	serial_rx_push(c->serial, buf, out);
}

static void on_stdin(void *opaque, uint32_t events)
{
	(void)events;
	pump(opaque);
}

/* With a full FIFO stdin is left unread (and unwatched) until the guest drains it. */
static void watch_stdin(struct console *c)
{
	bool want = c->open && c->pollable && serial_rx_room(c->serial) > 0;
	if (want == c->registered)
		return;
	if (want)
		c->registered = loop_add(c->loop, c->fd, EPOLLIN, on_stdin, c, NULL) == 0;
	else {
		loop_del(c->loop, c->fd);
		c->registered = false;
	}
}

struct console *console_attach(struct loop *loop, struct vm *vm, struct serial *serial,
			       vs_err_t *err)
{
	struct console *c = calloc(1, sizeof(*c));
	if (!c) {
		vs_err(err, ENOMEM, "console");
		return NULL;
	}
	*c = (struct console){
	    .vm = vm, .serial = serial, .loop = loop, .fd = STDIN_FILENO, .open = true};
	c->tty = isatty(c->fd);
	vs_err_t probe = NULL;
	if (loop_add(loop, c->fd, EPOLLIN, on_stdin, c, &probe) == 0)
		c->pollable = c->registered = true;
	else if (probe->errnum != EPERM) /* EPERM: a regular file, always readable */
		c->open = false;
	vs_err_free(&probe);
	make_raw(c);
	return c;
}

void console_detach(struct console *c)
{
	if (!c)
		return;
	restore(c);
	if (c->registered)
		loop_del(c->loop, c->fd);
	free(c);
}

int console_before_wait(struct console *c)
{
	watch_stdin(c);
	/* a file or /dev/null never signals readiness: read it while it has data */
	c->file_ready = c->open && !c->pollable && serial_rx_room(c->serial) > 0;
	if (c->file_ready)
		return 0;
	if (c->open && !c->registered)
		/* a full FIFO: look again soon. Not a second read of the room: the guest may
		 * drain it after watch_stdin() unwatched stdin, and an unwatched stdin with no
		 * timeout waits forever */
		return RETRY_MS;
	return -1;
}

void console_after_wait(struct console *c)
{
	if (c->file_ready && !vm_stopping(c->vm))
		pump(c);
}
