/* The controller: the main thread's event loop (signals, the console, the VM's stop, the
 * API socket) and what is done to the VM: build and start it, pause and resume it, stop
 * it. The API asks; only the controller acts on the VM, through the vCPU and device
 * rooms' functions. */
#include "vmm/seccomp.h"
#include "vmm/controller.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "vmm/api/api.h"
#include "vmm/builder.h"
#include "vmm/console.h"
#include "vmm/device.h"
#include "vmm/loop.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

struct controller {
	struct vm *vm;
	bool owns_vm; /* built here (the API's InstanceStart): freed here */
	bool paused;
	struct loop *loop;
	int sfd;
	int quit; /* before a VM runs: the status a stop signal asked for (-1: none) */
	struct console *console;
	struct api *api;
	struct api_server *server;
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
	if (read(c->sfd, &si, sizeof(si)) != sizeof(si))
		return;
	if (!c->vm) {
		vs_info("signal %u: exiting", si.ssi_signo);
		c->quit = 128 + (int)si.ssi_signo;
		return;
	}
	vs_info("signal %u: stopping the VM", si.ssi_signo);
	vm_stop(c->vm, 128 + (int)si.ssi_signo, "signal");
}

static void on_stop(void *opaque, uint32_t events)
{
	(void)opaque;
	(void)events; /* the loop ends: vm_stopping() is now true */
}

static int loop_open(struct controller *c, vs_err_t *err)
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
	return loop_add(c->loop, c->sfd, EPOLLIN, on_signal, c, err);
}

/* The VM's threads run and its stop and console join the loop. */
static int vm_attach(struct controller *c, struct vm *vm, vs_err_t *err)
{
	c->vm = vm;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		if (vcpu_start(&vm->vcpus[i], err) < 0) {
			vm_stop(vm, VM_EXIT_ERROR, "vCPU thread");
			return -1;
		}
	}
	if (loop_add(c->loop, vm->stop_fd, EPOLLIN, on_stop, c, err) < 0)
		return -1;
	struct serial *serial = device_find(vm, &serial_kind);
	if (serial) {
		c->console = console_attach(c->loop, vm, serial, err);
		if (!c->console)
			return -1;
	}
	return 0;
}

static bool running(const struct controller *c)
{
	return c->vm ? !vm_stopping(c->vm) : c->quit < 0;
}

static int loop_until_stopped(struct controller *c, vs_err_t *err)
{
	/* from here on the loop reads what the guest and API clients send */
	if (vmm_seccomp_apply(VMM_THREAD_MAIN, err) < 0)
		return -1;
	while (running(c)) {
		int timeout = c->console ? console_before_wait(c->console) : -1;
		if (loop_run_once(c->loop, timeout, err) < 0)
			return -1;
		if (c->console)
			console_after_wait(c->console);
	}
	return c->vm ? atomic_load(&c->vm->status) : c->quit;
}

/* Stops and joins the vCPUs, then frees the loop's parts. */
static void teardown(struct controller *c)
{
	if (c->vm && c->paused) { /* the workers wait for a resume that won't come */
		devices_resume(c->vm);
		vcpus_resume(c->vm);
	}
	api_server_close(c->server);
	console_detach(c->console);
	loop_free(c->loop);
	if (c->sfd >= 0)
		close(c->sfd);
	if (!c->vm)
		return;
	/* A vCPU that stopped the VM while we were still starting others could not
	 * signal those not yet marked started; every thread is marked now. */
	for (unsigned i = 0; i < c->vm->ncpus; i++)
		vcpu_kick(&c->vm->vcpus[i]);
	for (unsigned i = 0; i < c->vm->ncpus; i++)
		vcpu_join(&c->vm->vcpus[i]);
	vm_log_unclaimed(c->vm);
}

int controller_run(struct vm *vm, vs_err_t *err)
{
	if (vcpu_signals_init(err) < 0 || controller_claim_signals(err) < 0)
		return -1;
	struct controller c = {.sfd = -1, .quit = -1};
	int status = -1;
	if (loop_open(&c, err) == 0 && vm_attach(&c, vm, err) == 0)
		status = loop_until_stopped(&c, err);
	if (status < 0)
		vm_stop(vm, VM_EXIT_ERROR, "main loop error");
	c.vm = vm;
	teardown(&c);
	return status;
}

/* ---- what the API asks (struct api_controller) ---- */

static int api_start(void *ctx, const struct vm_config *cfg, vs_err_t *err)
{
	struct controller *c = ctx;
	struct vm *vm = vm_build(cfg, err);
	if (!vm)
		return -1;
	c->owns_vm = true;
	if (vm_attach(c, vm, err) < 0) {
		/* the VM ends: the loop sees it stopped and vessel exits with the error's status */
		vm_stop(vm, VM_EXIT_ERROR, "start");
		return -1;
	}
	return 0;
}

static int api_pause(void *ctx, vs_err_t *err)
{
	struct controller *c = ctx;
	if (vcpus_pause(c->vm, err) < 0)
		return -1;
	devices_pause(c->vm);
	c->paused = true;
	return 0;
}

static int api_resume(void *ctx, vs_err_t *err)
{
	struct controller *c = ctx;
	(void)err;
	devices_resume(c->vm);
	vcpus_resume(c->vm);
	c->paused = false;
	return 0;
}

/* Typed on the i8042's keyboard, as Firecracker does; the guest decides what follows
 * (Linux reboots, unless its init turned Ctrl+Alt+Del into a signal). */
static int api_ctrl_alt_del(void *ctx, vs_err_t *err)
{
	struct controller *c = ctx;
	if (device_ctrl_alt_del(c->vm, err) < 0)
		return vs_err_wrap(err, "SendCtrlAltDel");
	return 0;
}

int controller_serve(const struct controller_api *o, vs_err_t *err)
{
	if (vcpu_signals_init(err) < 0 || controller_claim_signals(err) < 0)
		return -1;
	struct controller c = {.sfd = -1, .quit = -1};
	const struct api_controller ops = {
	    .ctx = &c,
	    .start = api_start,
	    .pause = api_pause,
	    .resume = api_resume,
	    .ctrl_alt_del = api_ctrl_alt_del,
	};
	int status = -1;
	if (loop_open(&c, err) < 0)
		goto out;
	c.api = api_new(o->id, &ops, err);
	if (!c.api)
		goto out;
	c.server = api_server_open(c.loop, o->sock, c.api, err);
	if (!c.server)
		goto out;
	if (o->config_file && api_boot_config_file(c.api, o->config_file, err) < 0)
		goto out;
	vs_debug("API on %s", o->sock);
	status = loop_until_stopped(&c, err);
	if (status < 0 && c.vm)
		vm_stop(c.vm, VM_EXIT_ERROR, "main loop error");
out:
	if (status < 0 && c.vm)
		vm_stop(c.vm, VM_EXIT_ERROR, "API error");
	teardown(&c);
	api_free(c.api);
	if (c.owns_vm)
		vm_free(c.vm);
	return status;
}
