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

struct input {
	int fd;
	bool tty, pollable, open, escape;
	struct termios saved;
};

static void input_raw(struct input *in)
{
	if (!in->tty || tcgetattr(in->fd, &in->saved) < 0) {
		in->tty = false;
		return;
	}
	struct termios t = in->saved;
	cfmakeraw(&t);
	t.c_oflag |= OPOST; /* keep "\n" -> "\r\n" for vessel's own messages */
	tcsetattr(in->fd, TCSANOW, &t);
}

static void input_restore(struct input *in)
{
	if (in->tty)
		tcsetattr(in->fd, TCSANOW, &in->saved);
}

/* Feeds what fits into the UART. Returns false when the VM should quit (Ctrl-A x). */
static bool input_pump(struct input *in, struct vm *vm, struct serial *serial)
{
	uint8_t buf[64];
	size_t room = serial_rx_room(serial);
	if (room == 0)
		return true;
	if (room > sizeof(buf))
		room = sizeof(buf);
	ssize_t n = read(in->fd, buf, room);
	if (n < 0) {
		if (errno != EINTR && errno != EAGAIN)
			in->open = false;
		return true;
	}
	if (n == 0) {
		/* EOF on a pipe or file: the guest keeps running without input */
		in->open = false;
		return true;
	}
	size_t out = 0;
	for (ssize_t i = 0; i < n; i++) {
		uint8_t c = buf[i];
		if (in->tty && in->escape) {
			in->escape = false;
			if (c == 'x' || c == 'X') {
				vm_stop(vm, 128 + SIGINT, "Ctrl-A x on the console");
				return false;
			}
			if (c != CTRL_A)
				buf[out++] = CTRL_A;
		} else if (in->tty && c == CTRL_A) {
			in->escape = true;
			continue;
		}
		buf[out++] = c;
	}
	serial_rx_push(serial, buf, out);
	return true;
}

int console_loop(struct vm *vm, struct serial *serial, vs_err_t *err)
{
	sigset_t sigs;
	stop_signals(&sigs);
	sigdelset(&sigs, SIGUSR1);
	cleanup_close int sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	cleanup_close int ep = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || ep < 0)
		return vs_err(err, errno, "console: signalfd/epoll");
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = sfd};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev) < 0)
		return vs_err(err, errno, "epoll_ctl");
	ev.data.fd = vm->stop_fd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, vm->stop_fd, &ev) < 0)
		return vs_err(err, errno, "epoll_ctl");

	struct input in = {.fd = STDIN_FILENO, .open = true};
	in.tty = isatty(in.fd);
	ev.data.fd = in.fd;
	bool registered = false;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, in.fd, &ev) == 0)
		in.pollable = registered = true;
	else if (errno != EPERM) /* EPERM: a regular file, always readable */
		in.open = false;
	input_raw(&in);

	while (!vm_stopping(vm)) {
		/* with a full receive FIFO, stop listening to stdin and look again soon */
		bool want = in.open && serial_rx_room(serial) > 0;
		if (in.pollable && want != registered) {
			ev.data.fd = in.fd;
			epoll_ctl(ep, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, in.fd, &ev);
			registered = want;
		}
		/* a file or /dev/null never signals readiness: read it now while it has data */
		int timeout = -1;
		if (want && !in.pollable)
			timeout = 0;
		else if (in.open && !want)
			timeout = RETRY_MS;
		struct epoll_event evs[4];
		int n = epoll_wait(ep, evs, 4, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			input_restore(&in);
			return vs_err(err, errno, "epoll_wait");
		}
		bool stdin_ready = want && !in.pollable;
		for (int i = 0; i < n; i++) {
			if (evs[i].data.fd == sfd) {
				struct signalfd_siginfo si;
				if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
					vs_info("signal %u: stopping the VM", si.ssi_signo);
					vm_stop(vm, 128 + (int)si.ssi_signo, "signal");
				}
			} else if (evs[i].data.fd == in.fd) {
				stdin_ready = want;
			}
		}
		if (stdin_ready && !vm_stopping(vm))
			input_pump(&in, vm, serial);
	}
	input_restore(&in);
	return atomic_load(&vm->status);
}
