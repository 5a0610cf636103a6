#include "vmm/controller.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "vmm/console.h"
#include "vmm/device.h"
#include "vmm/loop.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

struct controller {
	struct vm *vm;
	struct loop *loop;
	int sfd;
	struct console *console;
};

static void stop_signals(sigset_t *s)
{
	sigemptyset(s);
	sigaddset(s, SIGINT);
	sigaddset(s, SIGTERM);
	sigaddset(s, SIGHUP);
	sigaddset(s, SIGUSR1); /* the vCPU kick: only vCPU threads take it */
}

int controller_claim_signals(vs_err_t *err)
{
	sigset_t s;
	stop_signals(&s);
	int e = pthread_sigmask(SIG_BLOCK, &s, NULL);
	if (e)
		return vs_err(err, e, "pthread_sigmask");
	return 0;
}

static void on_signal(void *opaque, uint32_t events)
{
	struct controller *c = opaque;
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

static int loop_until_stopped(struct controller *c, vs_err_t *err)
{
	sigset_t sigs;
	stop_signals(&sigs);
	sigdelset(&sigs, SIGUSR1);
	c->sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (c->sfd < 0)
		return vs_err(err, errno, "signalfd");
	c->loop = loop_new(err);
	if (!c->loop)
		return -1;
	if (loop_add(c->loop, c->sfd, EPOLLIN, on_signal, c, err) < 0 ||
	    loop_add(c->loop, c->vm->stop_fd, EPOLLIN, on_stop, c, err) < 0)
		return -1;
	struct serial *serial = device_find(c->vm, &serial_kind);
	if (serial) {
		c->console = console_attach(c->loop, c->vm, serial, err);
		if (!c->console)
			return -1;
	}
	while (!vm_stopping(c->vm)) {
		int timeout = c->console ? console_before_wait(c->console) : -1;
		if (loop_run_once(c->loop, timeout, err) < 0)
			return -1;
		if (c->console)
			console_after_wait(c->console);
	}
	return atomic_load(&c->vm->status);
}

int controller_run(struct vm *vm, vs_err_t *err)
{
	if (vcpu_signals_init(err) < 0 || controller_claim_signals(err) < 0)
		return -1;
	struct controller c = {.vm = vm, .sfd = -1};
	for (unsigned i = 0; i < vm->ncpus; i++) {
		if (vcpu_start(&vm->vcpus[i], err) < 0) {
			vm_stop(vm, VM_EXIT_ERROR, "vCPU thread");
			break;
		}
	}
	int status = *err ? -1 : loop_until_stopped(&c, err);
	if (status < 0)
		vm_stop(vm, VM_EXIT_ERROR, "main loop error");
	console_detach(c.console);
	loop_free(c.loop);
	if (c.sfd >= 0)
		close(c.sfd);
	/* A vCPU that stopped the VM while we were still starting others could not
	 * signal those not yet marked started; every thread is marked now. */
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_join(&vm->vcpus[i]);
	vm_log_unclaimed(vm);
	return status;
}
