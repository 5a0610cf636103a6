#include "vmm/console.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "vmm/devices/serial.h"
#include "vmm/loop.h"
#include "vmm/vm.h"

#define CTRL_A 0x01
#define RETRY_MS 10

static void stop_signals(sigset_t *s)
{
	sigemptyset(s);
	sigaddset(s, SIGINT);
	sigaddset(s, SIGTERM);
	sigaddset(s, SIGHUP);
	sigaddset(s, SIGUSR1); /* the vCPU kick: only vCPU threads take it */
}

int console_block_signals(vs_err_t *err)
{
	sigset_t s;
	stop_signals(&s);
	int e = pthread_sigmask(SIG_BLOCK, &s, NULL);
	if (e)
		return vs_err(err, e, "pthread_sigmask");
	return 0;
}

/* The host side of COM1's receiver: stdin, paced by the UART's FIFO. */
struct console {
	struct vm *vm;
	struct serial *serial;
	struct loop *loop;
	int fd, sfd;
	bool tty, pollable, open, registered, escape;
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

static void on_signal(void *opaque, uint32_t events)
{
	struct console *c = opaque;
	(void)events;
	struct signalfd_siginfo si;
	if (read(c->sfd, &si, sizeof(si)) == sizeof(si)) {
		vs_info("signal %u: stopping the VM", si.ssi_signo);
		vm_stop(c->vm, 128 + (int)si.ssi_signo, "signal");
	}
}

static void on_stop(void *opaque, uint32_t events)
{
	(void)opaque;
	(void)events; /* the loop ends: vm_stopping() is now true */
}

int console_loop(struct vm *vm, struct serial *serial, vs_err_t *err)
{
	sigset_t sigs;
	stop_signals(&sigs);
	sigdelset(&sigs, SIGUSR1);
	cleanup_close int sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		return vs_err(err, errno, "signalfd");
	struct loop *loop = loop_new(err);
	if (!loop)
		return -1;
	struct console c = {
	    .vm = vm, .serial = serial, .loop = loop, .fd = STDIN_FILENO, .sfd = sfd, .open = true};
	int status = -1;
	if (loop_add(loop, sfd, EPOLLIN, on_signal, &c, err) < 0 ||
	    loop_add(loop, vm->stop_fd, EPOLLIN, on_stop, &c, err) < 0)
		goto out;

	c.tty = isatty(c.fd);
	vs_err_t probe = NULL;
	if (loop_add(loop, c.fd, EPOLLIN, on_stdin, &c, &probe) == 0)
		c.pollable = c.registered = true;
	else if (probe->errnum != EPERM) /* EPERM: a regular file, always readable */
		c.open = false;
	vs_err_free(&probe);
	make_raw(&c);

	while (!vm_stopping(vm)) {
		watch_stdin(&c);
		/* a file or /dev/null never signals readiness: read it while it has data */
		bool file_ready = c.open && !c.pollable && serial_rx_room(serial) > 0;
		int timeout = -1;
		if (file_ready)
			timeout = 0;
		else if (c.open && !c.registered)
			/* a full FIFO: look again soon. Not a second read of the room: the
			 * guest may drain it after watch_stdin() unwatched stdin, and an
			 * unwatched stdin with no timeout waits forever */
			timeout = RETRY_MS;
		if (loop_run_once(loop, timeout, err) < 0)
			goto out;
		if (file_ready && !vm_stopping(vm))
			pump(&c);
	}
	status = atomic_load(&vm->status);
out:
	restore(&c);
	loop_free(loop);
	return status;
}
