/* The controller: the main thread's event loop (signals, the console, the VM's stop, the
 * API socket) and what is done to the VM: build and start it, pause and resume it, stop
 * it. The API asks; only the controller acts on the VM, through the vCPU and device
 * rooms' functions. */
#include "vmm/seccomp.h"
#include "vmm/controller.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "vmm/api/api.h"
#include "vmm/builder.h"
#include "vmm/console.h"
#include "vmm/device.h"
#include "vmm/loop.h"
#include "vmm/snapshot/snapshot.h"
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
	/* a VM loaded from a snapshot runs on its memory file (MAP_PRIVATE): that file must
	 * not be rewritten under it */
	bool mem_file;
	dev_t mem_dev;
	ino_t mem_ino;
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
	if (vm_clock_hold(c->vm, err) < 0) {
		vcpus_resume(c->vm);
		return vs_err_wrap(err, "pause");
	}
	devices_pause(c->vm);
	c->paused = true;
	return 0;
}

static int api_resume(void *ctx, vs_err_t *err)
{
	struct controller *c = ctx;
	/* the clock first: a vCPU must not run with the time the pause took */
	if (vm_clock_release(c->vm, err) < 0)
		return vs_err_wrap(err, "resume");
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

static int api_snapshot_create(void *ctx, const struct api_snapshot_create *o,
			       const char *config_json, vs_err_t *err)
{
	struct controller *c = ctx;
	struct stat st;
	if (c->mem_file && stat(o->mem_path, &st) == 0 && st.st_dev == c->mem_dev &&
	    st.st_ino == c->mem_ino)
		return vs_err(err, 0,
			      "mem_file_path `%s`: the VM runs on that memory file (loaded from "
			      "it); write the snapshot to another file",
			      o->mem_path);
	return snapshot_create(c->vm, config_json, o->diff ? SNAPSHOT_DIFF : SNAPSHOT_FULL,
			       o->state_path, o->mem_path, err);
}

/* network_overrides: a clone's interfaces on other taps; enable_diff_snapshots. */
static int adjust_config(json_t *doc, const struct api_snapshot_load *o, vs_err_t *err)
{
	json_t *ifs = json_object_get(doc, "network-interfaces");
	for (size_t i = 0; i < o->nnet; i++) {
		json_t *hit = NULL, *it;
		size_t k;
		json_array_foreach(ifs, k, it)
		{
			const char *id = json_string_value(json_object_get(it, "iface_id"));
			if (id && strcmp(id, o->net[i].iface_id) == 0)
				hit = it;
		}
		if (!hit)
			return vs_err(err, 0,
				      "network_overrides[%zu].iface_id: `%s`: the snapshot has no "
				      "such network interface",
				      i, o->net[i].iface_id);
		if (json_object_set_new(hit, "host_dev_name", json_string(o->net[i].host_dev_name)))
			return vs_err(err, ENOMEM, "network_overrides");
	}
	if (!o->track_dirty)
		return 0;
	json_t *mc = json_object_get(doc, "machine-config");
	if (!mc && json_object_set_new(doc, "machine-config", mc = json_object()))
		return vs_err(err, ENOMEM, "machine-config");
	if (json_object_set_new(mc, "track_dirty_pages", json_true()))
		return vs_err(err, ENOMEM, "machine-config");
	return 0;
}

/* The whole state file is read and checked, and the VM built and restored, before any of
 * it runs; any failure frees what was made and leaves the instance as it was. */
static int api_snapshot_load(void *ctx, const struct api_snapshot_load *o, json_t **doc,
			     vs_err_t *err)
{
	struct controller *c = ctx;
	struct snapshot s;
	if (snapshot_open(o->state_path, &s, err) < 0)
		return -1;
	struct vm_config cfg;
	vm_config_init(&cfg);
	struct vm *vm = NULL;
	struct stat st;
	int rc = -1;
	if (adjust_config(s.config, o, err) < 0)
		goto out;
	if (vm_config_from_json_partial(&cfg, s.config, err) < 0) {
		vs_err_wrap(err, "state file `%s`: its config", o->state_path);
		goto out;
	}
	if (stat(o->mem_path, &st) < 0) {
		vs_err(err, errno, "memory file `%s`", o->mem_path);
		goto out;
	}
	vm = vm_build_restore(&cfg, o->mem_path, err);
	if (!vm)
		goto out;
	if (snapshot_restore(vm, &s, err) < 0) {
		vs_err_wrap(err, "state file `%s`", o->state_path);
		goto out;
	}
	if (o->resume) {
		devices_resume(vm);
	} else {
		/* its vCPUs start parked, the clock held from now: a later resume continues
		 * from the snapshot's instant */
		if (vm_clock_hold(vm, err) < 0)
			goto out;
		atomic_store(&vm->park_req, true);
		c->paused = true;
	}
	c->mem_file = true;
	c->mem_dev = st.st_dev;
	c->mem_ino = st.st_ino;
	c->owns_vm = true;
	rc = 0;
	if (vm_attach(c, vm, err) < 0) {
		/* as a failed InstanceStart: the loop sees it stopped, vessel exits */
		vm_stop(vm, VM_EXIT_ERROR, "start");
		rc = -1;
	} else {
		*doc = json_incref(s.config);
	}
	vm = NULL; /* the controller's now, as an InstanceStart's VM */
out:
	vm_free(vm);
	vm_config_free(&cfg);
	snapshot_close(&s);
	return rc;
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
	    .snapshot_create = api_snapshot_create,
	    .snapshot_load = api_snapshot_load,
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
