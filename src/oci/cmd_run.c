/* run: create + start + wait, with the container's exit status as ours. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "oci/create_args.h"
#include "oci/hooks.h"
#include "oci/launch.h"
#include "oci/lifecycle.h"
#include "oci/oci.h"
#include "oci/sync.h"
#include "oci/tty.h"
#include "oci/waitloop.h"
#include "vmc/vmc.h"

static void poststart(struct launch *l)
{
	if (!l->spec->hooks.n[HOOK_POSTSTART])
		return;
	json_t *s = state_to_oci_json(&l->st, STATUS_RUNNING);
	vs_err_t herr = NULL;
	if (hooks_run(&l->spec->hooks, HOOK_POSTSTART, s, &herr) < 0) {
		vs_warn("%s", herr->msg);
		vs_err_free(&herr);
	}
	json_decref(s);
}

int oci_cmd_run(const struct vs_globals *g, int argc, char **argv, vs_err_t *err)
{
	struct create_args a;
	int rc = create_args_parse("run", argc, argv, &a, err);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	if (vmc_wanted(g, a.bundle)) {
		struct vmc_create_opts v = {a.o.id, a.bundle, a.o.pid_file, a.detach,
					    a.o.console_socket};
		if (a.detach) {
			pid_t pid;
			if (vmc_create(g, &v, &pid, err) < 0)
				return -1;
			struct container_state st;
			rc = state_load(g, a.o.id, false, &st, err);
			if (rc == 0)
				rc = vmc_start(&st, err);
			state_release(&st);
			return rc;
		}
		return vmc_run(g, &v, a.keep, err);
	}
	/* From the start, as runc's signal handler: a signal that comes while the container is
	 * being made waits, and is forwarded once its process runs, instead of killing run
	 * between create and start and leaving a created container behind. The container's
	 * process starts with an empty mask (process_finish). */
	if (!a.detach)
		waitloop_block_signals();
	/* a terminal with nobody to receive it: run attaches it to ours, like runc */
	struct tty_proxy *tty = NULL;
	if (!a.o.console_socket && !a.detach) {
		a.o.console_fd = tty_proxy_socket(&tty, err);
		if (a.o.console_fd < 0)
			return -1;
	}
	struct launch l;
	if (launch_container(g, &a.o, &l, err) < 0)
		goto fail_release;
	if (a.o.console_fd >= 0) {
		close(a.o.console_fd);
		a.o.console_fd = -1;
	}
	if (!l.spec->process.terminal) {
		tty_proxy_free(tty);
		tty = NULL;
	}
	/* kill, state and friends must work on us while we wait */
	state_unlock(&l.st);
	if (sync_send(l.sync_fd, SYNC_START, err) < 0 || waitloop_exec_result(l.sync_fd, err) < 0)
		goto fail;
	poststart(&l);
	if (a.detach) {
		launch_release(&l);
		return 0;
	}
	int status = waitloop_forward(l.pid, tty, err);
	tty_proxy_free(tty);
	tty = NULL;
	if (status < 0) {
		launch_release(&l);
		return -1;
	}
	l.pid = 0;
	if (!a.keep) {
		vs_err_t derr = NULL;
		if (state_lock(&l.st, &derr) < 0 || lifecycle_destroy(&l.st, &derr) < 0) {
			vs_warn("%s", derr->msg);
			vs_err_free(&derr);
		}
	}
	launch_release(&l);
	return status;
fail:
	launch_abort(&l);
fail_release:
	if (a.o.console_fd >= 0)
		close(a.o.console_fd);
	tty_proxy_free(tty);
	launch_release(&l);
	return -1;
}
