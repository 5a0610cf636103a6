/* The migration's source on a real KVM VM, up to where a destination would be needed: a
 * migration that fails (nobody listens) leaves the VM as it found it, KVM's dirty log off
 * again unless Diff snapshots had it on before; --local is refused for a VM whose RAM is
 * not shared, or over TCP, before anything starts. */
#include <criterion/criterion.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/migration/migration.h"
#include "vmm/vm.h"

static struct vm vm;
static int kvm_fd = -1, notify = -1;
static bool finished, finished_ok;
static char finished_error[512];

static void make(unsigned mem_flags)
{
	vs_err_t err = NULL;
	cr_assert_eq(vm_open_kvm(&kvm_fd, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(vm_create(&vm, kvm_fd, 1, 16ULL << 20, mem_flags, &err), 0, "%s",
		     err ? err->msg : "");
	notify = eventfd(0, EFD_CLOEXEC);
	cr_assert_geq(notify, 0);
	finished = false;
}

static void teardown(void)
{
	vm_destroy(&vm);
	close(kvm_fd);
	close(notify);
}

static int stop_and_save(void *ctx, uint8_t **state, size_t *len, vs_err_t *err)
{
	(void)ctx, (void)state, (void)len;
	return vs_err(err, 0, "not in this test");
}

static void resume(void *ctx)
{
	(void)ctx;
}

static void on_finished(void *ctx, bool ok, const char *error)
{
	(void)ctx;
	finished = true;
	finished_ok = ok;
	snprintf(finished_error, sizeof(finished_error), "%s", error ? error : "");
}

static const struct mig_controller ctl = {NULL, stop_and_save, resume, on_finished};

/* Plays the controller's loop until the sender reports. */
static void serve(struct mig_sender *s)
{
	for (int i = 0; i < 100 && !finished; i++) {
		struct pollfd p = {notify, POLLIN, 0};
		cr_assert_geq(poll(&p, 1, 100), 0);
		if (p.revents & POLLIN) {
			uint64_t n;
			cr_assert_eq(read(notify, &n, sizeof(n)), (ssize_t)sizeof(n));
		}
		migration_service(s);
	}
	cr_assert(finished, "the sender never reported");
}

static struct mig_sender *start(const char *url, bool local, vs_err_t *err)
{
	const struct mig_send_opts o = {.url = url, .downtime_ms = 300, .timeout_s = 5,
					.local = local};
	return migration_send_start(&vm, &o, "{}", &ctl, notify, err);
}

Test(migration_kvm, a_failed_migration_turns_the_dirty_log_off_again, .fini = teardown)
{
	make(0);
	vs_err_t err = NULL;
	struct mig_sender *s = start("unix:/nonexistent/vessel-mig.sock", false, &err);
	cr_assert_not_null(s, "%s", err ? err->msg : "");
	cr_assert(vm.dirty_log, "the rounds need KVM's log");
	serve(s);
	cr_assert_not(finished_ok);
	cr_assert(strstr(finished_error, "connect"), "%s", finished_error);
	cr_assert_not(vm.dirty_log, "KVM's log left on after the migration failed");
	migration_send_free(s);
}

Test(migration_kvm, a_diff_snapshots_log_stays_on, .fini = teardown)
{
	make(0);
	vs_err_t err = NULL;
	cr_assert_eq(vm_dirty_log(&vm, true, &err), 0);
	cr_assert_eq(guest_mem_track_dirty(&vm.mem, true, &err), 0);
	struct mig_sender *s = start("unix:/nonexistent/vessel-mig.sock", false, &err);
	cr_assert_not_null(s, "%s", err ? err->msg : "");
	serve(s);
	cr_assert_not(finished_ok);
	cr_assert(vm.dirty_log, "the Diff snapshots' log was turned off");
	migration_send_free(s);
}

Test(migration_kvm, local_needs_shared_ram_and_a_unix_socket, .fini = teardown)
{
	make(0);
	vs_err_t err = NULL;
	cr_assert_null(start("unix:/nonexistent/vessel-mig.sock", true, &err));
	cr_assert(strstr(err->msg, "not shared"), "%s", err->msg);
	vs_err_free(&err);
	cr_assert_not(vm.dirty_log);
	vm_destroy(&vm);
	close(kvm_fd);
	close(notify);

	make(GUEST_MEM_SHARED);
	cr_assert_null(start("tcp:127.0.0.1:9", true, &err));
	cr_assert(strstr(err->msg, "Unix socket"), "%s", err->msg);
	vs_err_free(&err);
	/* local on a Unix socket: no log at all, and a failure says why */
	struct mig_sender *s = start("unix:/nonexistent/vessel-mig.sock", true, &err);
	cr_assert_not_null(s, "%s", err ? err->msg : "");
	cr_assert_not(vm.dirty_log, "a local migration copies no page: no log");
	serve(s);
	cr_assert_not(finished_ok);
	migration_send_free(s);
}
