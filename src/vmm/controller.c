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
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "vmm/api/api.h"
#include "vmm/builder.h"
#include "vmm/console.h"
#include "vmm/device.h"
#include "vmm/inventory/inventory.h"
#include "vmm/loop.h"
#include "vmm/migration/migration.h"
#include "vmm/snapshot/snapshot.h"
#include "vmm/vcpu.h"
#include "vmm/virtio/balloon.h"
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
	/* a migration away (migration/send.c): its worker wakes us through mig_fd; once the
	 * destination has the VM, it stays paused here and vessel exits after linger_fd */
	struct mig_sender *mig;
	int mig_fd, linger_fd;
	char *mig_config, *mig_url;
	bool migrated;
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
	/* a migration still going gives up (its worker reads guest RAM) */
	migration_send_free(c->mig);
	c->mig = NULL;
	if (c->vm && c->paused) { /* the workers wait for a resume that won't come */
		/* a migrated VM's devices stay paused: the destination owns its disks now,
		 * and a request left on a queue must not be done twice */
		if (!c->migrated)
			devices_resume(c->vm);
		vcpus_resume(c->vm);
	}
	api_server_close(c->server);
	console_detach(c->console);
	loop_free(c->loop);
	if (c->sfd >= 0)
		close(c->sfd);
	if (c->mig_fd >= 0)
		close(c->mig_fd);
	if (c->linger_fd >= 0)
		close(c->linger_fd);
	free(c->mig_config);
	free(c->mig_url);
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
	struct controller c = {.sfd = -1, .quit = -1, .mig_fd = -1, .linger_fd = -1};
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

/* While a migration runs, or after it moved the VM, only the migration acts on the VM. */
static int migration_busy(const struct controller *c, const char *what, vs_err_t *err)
{
	if (c->migrated)
		return vs_err(err, 0, "%s: the VM has migrated to %s", what, c->mig_url);
	if (migration_active(c->mig))
		return vs_err(err, 0, "%s: a migration to %s is in progress", what, c->mig_url);
	return 0;
}

static int pause_vm(struct controller *c, vs_err_t *err)
{
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

static int api_pause(void *ctx, vs_err_t *err)
{
	struct controller *c = ctx;
	if (migration_busy(c, "pause", err) < 0)
		return -1;
	return pause_vm(c, err);
}

static int resume_vm(struct controller *c, vs_err_t *err)
{
	/* the clock first: a vCPU must not run with the time the pause took */
	if (vm_clock_release(c->vm, err) < 0)
		return vs_err_wrap(err, "resume");
	devices_resume(c->vm);
	vcpus_resume(c->vm);
	c->paused = false;
	return 0;
}

static int api_resume(void *ctx, vs_err_t *err)
{
	struct controller *c = ctx;
	if (migration_busy(c, "resume", err) < 0)
		return -1;
	return resume_vm(c, err);
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
	if (migration_busy(c, "snapshot", err) < 0)
		return -1;
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
	for (size_t i = 0; i < o->nnet; i++)
		if (vm_json_set_tap(doc, o->net[i].iface_id, o->net[i].host_dev_name) < 0)
			return errno == ENOENT ? vs_err(err, 0,
							"network_overrides[%zu].iface_id: `%s`: the "
							"snapshot has no such network interface",
							i, o->net[i].iface_id)
					       : vs_err(err, ENOMEM, "network_overrides");
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
	if (snapshot_check_cpu(&s, err) < 0) {
		vs_err_wrap(err, "state file `%s`", o->state_path);
		goto out;
	}
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
	vm = vm_build_restore(&cfg, o->mem_path, -1, err);
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

/* PATCH /drives/{id}, /network-interfaces/{id}: the device changes itself (device.h). */
static int api_device_update(void *ctx, const struct device_kind *kind, unsigned index,
			     json_t *body, vs_err_t *err)
{
	struct controller *c = ctx;
	return device_update(c->vm, kind, index, body, err);
}

/* ---- a migration away (migration/migration.h): the worker asks, the loop does ---- */

static int mig_stop_and_save(void *ctx, uint8_t **state, size_t *len, vs_err_t *err)
{
	struct controller *c = ctx;
	if (pause_vm(c, err) < 0)
		return -1;
	if (snapshot_save_state(c->vm, c->mig_config, state, len, err) < 0) {
		cleanup_err vs_err_t e2 = NULL;
		resume_vm(c, &e2);
		return -1;
	}
	return 0;
}

static void mig_resume(void *ctx)
{
	struct controller *c = ctx;
	cleanup_err vs_err_t err = NULL;
	if (resume_vm(c, &err) < 0)
		vs_warn("migration failed and the VM could not resume: %s", err->msg);
}

static void on_linger(void *opaque, uint32_t events)
{
	struct controller *c = opaque;
	(void)events;
	uint64_t n;
	(void)!read(c->linger_fd, &n, sizeof(n));
	vm_stop(c->vm, 0, "migrated");
}

/* How long a migrated-away source waits for someone to read GET /migrate's "completed"
 * (migrate-send polls every 50 ms, but a loaded host can hold it back for seconds), and
 * how long it stays once that answer is out: long enough for the answer to be written. */
#define MIG_LINGER_S 10
#define MIG_LINGER_AFTER_READ_MS 200

static void linger(struct controller *c, time_t sec, long nsec)
{
	struct itimerspec t = {.it_value = {.tv_sec = sec, .tv_nsec = nsec}};
	cleanup_err vs_err_t err = NULL;
	if (c->linger_fd < 0) {
		c->linger_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (c->linger_fd < 0 ||
		    loop_add(c->loop, c->linger_fd, EPOLLIN, on_linger, c, &err) < 0) {
			vm_stop(c->vm, 0, "migrated");
			return;
		}
	}
	if (timerfd_settime(c->linger_fd, 0, &t, NULL) < 0)
		vm_stop(c->vm, 0, "migrated");
}

/* The destination runs the VM: this one stays paused and vessel exits 0 once GET
 * /migrate has answered "completed" (to whoever started it), or MIG_LINGER_S later. */
static void mig_finished(void *ctx, bool ok, const char *error)
{
	struct controller *c = ctx;
	if (!ok) {
		vs_warn("migration to %s failed, the VM runs on here: %s", c->mig_url, error);
		return;
	}
	c->migrated = true;
	fprintf(stderr, "vessel: migrated to %s\n", c->mig_url);
	linger(c, MIG_LINGER_S, 0);
}

static void on_migration(void *opaque, uint32_t events)
{
	struct controller *c = opaque;
	(void)events;
	uint64_t n;
	(void)!read(c->mig_fd, &n, sizeof(n));
	if (c->mig)
		migration_service(c->mig);
}

static int api_migrate(void *ctx, const struct api_migrate *o, const char *config_json,
		       vs_err_t *err)
{
	struct controller *c = ctx;
	if (migration_busy(c, "migrate", err) < 0)
		return -1;
	/* a VM that can't be saved can't move: said now, before anything is sent */
	if (snapshot_check(c->vm, err) < 0)
		return -1;
	if (c->mig_fd < 0) {
		c->mig_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (c->mig_fd < 0)
			return vs_err(err, errno, "eventfd");
		if (loop_add(c->loop, c->mig_fd, EPOLLIN, on_migration, c, err) < 0) {
			close(c->mig_fd);
			c->mig_fd = -1;
			return -1;
		}
	}
	migration_send_free(c->mig); /* the last one, finished */
	c->mig = NULL;
	free(c->mig_config);
	free(c->mig_url);
	c->mig_config = strdup(config_json);
	c->mig_url = strdup(o->url);
	if (!c->mig_config || !c->mig_url)
		return vs_err(err, ENOMEM, "migrate");
	const struct mig_send_opts so = {
	    .url = o->url,
	    .downtime_ms = o->downtime_ms,
	    .timeout_s = o->timeout_s,
	    .on_timeout = o->force ? MIG_TIMEOUT_FORCE : MIG_TIMEOUT_CANCEL,
	    .local = o->local,
	};
	const struct mig_controller ctl = {.ctx = c,
					   .stop_and_save = mig_stop_and_save,
					   .resume = mig_resume,
					   .finished = mig_finished};
	c->mig = migration_send_start(c->vm, &so, config_json, &ctl, c->mig_fd, err);
	return c->mig ? 0 : -1;
}

static json_t *api_migrate_status(void *ctx)
{
	struct controller *c = ctx;
	if (c->migrated)
		linger(c, 0, MIG_LINGER_AFTER_READ_MS * 1000000L);
	return c->mig ? migration_status(c->mig) : NULL;
}

static int api_balloon(void *ctx, const struct api_balloon_op *op, json_t **stats, vs_err_t *err)
{
	struct controller *c = ctx;
	void *b = device_find(c->vm, &virtio_balloon_kind);
	if (!b)
		return vs_err(err, 0, "the microVM has no balloon device");
	switch (op->what) {
	case API_BALLOON_TARGET:
		if (balloon_set_target(b, op->value, err) < 0)
			return -1;
		inventory_set_balloon((uint64_t)op->value << 20); /* `vm list` shows it */
		return 0;
	case API_BALLOON_STATS_INTERVAL:
		return balloon_set_stats_interval(b, op->value, err);
	default:
		*stats = balloon_stats_json(b, err);
		return *stats ? 0 : -1;
	}
}

int controller_serve(const struct controller_api *o, vs_err_t *err)
{
	if (vcpu_signals_init(err) < 0 || controller_claim_signals(err) < 0)
		return -1;
	struct controller c = {.sfd = -1, .quit = -1, .mig_fd = -1, .linger_fd = -1};
	const struct api_controller ops = {
	    .ctx = &c,
	    .start = api_start,
	    .pause = api_pause,
	    .resume = api_resume,
	    .ctrl_alt_del = api_ctrl_alt_del,
	    .snapshot_create = api_snapshot_create,
	    .snapshot_load = api_snapshot_load,
	    .device_update = api_device_update,
	    .migrate = api_migrate,
	    .migrate_status = api_migrate_status,
	    .balloon = api_balloon,
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
	if (o->vm) {
		/* a migrated-in VM, restored: it runs at once, the API describes it */
		c.owns_vm = true;
		api_adopt_running(c.api, json_incref(o->doc));
		devices_resume(o->vm);
		if (vm_attach(&c, o->vm, err) < 0) {
			vm_stop(o->vm, VM_EXIT_ERROR, "start");
			goto out;
		}
	}
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
	else if (o->vm) /* never attached */
		vm_free(o->vm);
	return status;
}
