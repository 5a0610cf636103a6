/* create, start, state, kill, delete: runc's lifecycle commands. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/proc.h"
#include "base/util.h"
#include "oci/create_args.h"
#include "oci/hooks.h"
#include "oci/launch.h"
#include "oci/lifecycle.h"
#include "oci/oci.h"
#include "oci/state.h"
#include "sandbox/sandbox.h"
#include "vmc/vmc.h"

static int usage_error(vs_err_t *err, const char *cmd, const char *usage)
{
	return vs_err(err, 0, "usage: vessel %s %s", cmd, usage);
}

int oci_cmd_create(const struct vs_globals *g, int argc, char **argv, vs_err_t *err)
{
	struct create_args a;
	int rc = create_args_parse("create", argc, argv, &a, err);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	if (vmc_wanted(g, a.bundle)) {
		struct vmc_create_opts v = {a.o.id, a.bundle, a.o.pid_file, true,
					    a.o.console_socket};
		pid_t pid;
		return vmc_create(g, &v, &pid, err) < 0 ? -1 : 0;
	}
	a.o.use_fifo = true;
	struct launch l;
	if (launch_container(g, &a.o, &l, err) < 0) {
		launch_release(&l);
		return -1;
	}
	launch_release(&l);
	return 0;
}

static int one_id(const char *cmd, int argc, char **argv, const char **id, vs_err_t *err)
{
	if (argc != 2 || argv[1][0] == '-')
		return usage_error(err, cmd, "ID");
	*id = argv[1];
	return 0;
}

/* The init writes one byte when start releases it, then keeps the fifo open until its
 * execve (close-on-exec): EOF after that byte means the user's process runs. Anything
 * more it writes is why it failed first. */
static int wait_started(int fd, const struct container_state *st, vs_err_t *err)
{
	char msg[4096];
	size_t got = 0;
	bool released = false;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, 100);
		if (r < 0 && errno != EINTR)
			return vs_err(err, errno, "wait on the exec fifo");
		if (r > 0) {
			char buf[512];
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n > 0) {
				size_t skip = released ? 0 : 1;
				released = true;
				for (size_t i = skip; i < (size_t)n && got < sizeof(msg) - 1; i++)
					msg[got++] = buf[i];
				continue;
			}
			/* EOF before the release byte only means no writer yet */
			if (n == 0 && released)
				break;
		}
		if (!proc_alive(st->pid, st->start_time)) {
			if (released)
				break;
			return vs_err(err, 0, "cannot start container `%s`: its init exited", st->id);
		}
		if (released && r == 0)
			continue;
		if (r > 0 && !released) {
			/* nothing to read yet and no writer: do not spin */
			struct timespec d = {0, 2000000};
			nanosleep(&d, NULL);
		}
	}
	msg[got] = '\0';
	if (got)
		return vs_err(err, 0, "cannot start container `%s`: %s", st->id, msg);
	return 0;
}

int oci_cmd_start(const struct vs_globals *g, int argc, char **argv, vs_err_t *err)
{
	const char *id = NULL;
	if (one_id("start", argc, argv, &id, err) < 0)
		return -1;
	struct container_state st;
	if (state_load(g, id, true, &st, err) < 0) {
		state_release(&st);
		return -1;
	}
	enum container_status status = state_status(&st);
	if (status != STATUS_CREATED) {
		vs_err(err, 0, "cannot start container `%s`: it is %s, not created", id,
		       state_status_name(status));
		state_release(&st);
		return -1;
	}
	if (vmc_is_vm(&st)) {
		int rc = vmc_start(&st, err);
		state_release(&st);
		return rc;
	}
	/* O_NONBLOCK: if the init died, a blocking open would wait for ever */
	int fd = openat(st.dir_fd, STATE_EXEC_FIFO, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		vs_err(err, errno, "open the exec fifo of `%s`", id);
		state_release(&st);
		return -1;
	}
	int ret = wait_started(fd, &st, err);
	close(fd);
	if (ret == 0) {
		unlinkat(st.dir_fd, STATE_EXEC_FIFO, 0);
		json_t *s = state_to_oci_json(&st, STATUS_RUNNING);
		vs_err_t herr = NULL;
		if (hooks_run_json(st.hooks, HOOK_POSTSTART, s, &herr) < 0) {
			vs_warn("%s", herr->msg);
			vs_err_free(&herr);
		}
		json_decref(s);
	}
	state_release(&st);
	return ret;
}

int oci_cmd_state(const struct vs_globals *g, int argc, char **argv, vs_err_t *err)
{
	const char *id = NULL;
	if (one_id("state", argc, argv, &id, err) < 0)
		return -1;
	struct container_state st;
	if (state_load(g, id, false, &st, err) < 0) {
		state_release(&st);
		return -1;
	}
	enum container_status status = state_status(&st);
	json_t *j = state_to_oci_json(&st, status);
	json_object_set_new(j, "rootfs", json_string(st.rootfs ? st.rootfs : ""));
	json_object_set_new(j, "created", json_string(st.created ? st.created : ""));
	json_object_set_new(j, "owner", json_string(""));
	char *text = json_dumps(j, JSON_INDENT(2));
	json_decref(j);
	state_release(&st);
	if (!text)
		return vs_err(err, ENOMEM, "state");
	printf("%s\n", text);
	free(text);
	return 0;
}

/* --all: every process of the container (lifecycle_pids), the init or not */
static int kill_all(struct container_state *st, int sig, vs_err_t *err)
{
	struct cgroup *cg = NULL;
	pid_t *pids = NULL;
	size_t n = 0;
	if (!st->cgroup)
		return vs_err(err, 0, "container `%s` has no cgroup", st->id);
	if (cgroup_from_json(st->cgroup, &cg, err) < 0 ||
	    lifecycle_pids(st, cg, &pids, &n, err) < 0) {
		cgroup_free(cg);
		return -1;
	}
	int ret = 0;
	if (n == 0)
		ret = vs_err(err, 0, "cannot kill container `%s`: container not running", st->id);
	for (size_t i = 0; i < n; i++)
		kill(pids[i], sig);
	free(pids);
	cgroup_free(cg);
	return ret;
}

int oci_cmd_kill(const struct vs_globals *g, int argc, char **argv, vs_err_t *err)
{
	bool all = false;
	int c;
	static const struct option opts[] = {{"all", no_argument, NULL, 'a'}, {0}};
	while ((c = getopt_long(argc, argv, "+a", opts, NULL)) != -1) {
		if (c != 'a')
			return usage_error(err, "kill", "[--all] ID [SIGNAL]");
		all = true;
	}
	if (optind >= argc || argc - optind > 2)
		return usage_error(err, "kill", "[--all] ID [SIGNAL]");
	const char *id = argv[optind];
	int sig = SIGTERM;
	if (argc - optind == 2 && lifecycle_parse_signal(argv[optind + 1], &sig, err) < 0)
		return -1;
	struct container_state st;
	if (state_load(g, id, true, &st, err) < 0) {
		state_release(&st);
		return -1;
	}
	int ret = 0;
	/* the VMM's pid is not the container's process: the agent signals it in the guest */
	if (vmc_is_vm(&st))
		ret = vmc_kill(&st, sig, err);
	else if (all)
		ret = kill_all(&st, sig, err);
	else if (state_status(&st) == STATUS_STOPPED || st.pid <= 0)
		ret = vs_err(err, 0, "cannot kill container `%s`: container not running", id);
	else if (kill(st.pid, sig) < 0)
		ret = vs_err(err, errno == ESRCH ? 0 : errno, "kill container `%s`%s", id,
			     errno == ESRCH ? ": no such process" : "");
	state_release(&st);
	return ret;
}

/* What delete -f can do about a directory whose record it cannot read: remove the
 * directory, and say clearly what may be left. */
static int remove_garbled(struct container_state *st, vs_err_t *err)
{
	vs_err_t rerr = NULL;
	if (state_remove(st, &rerr) < 0) {
		vs_err_wrap(err, "delete container `%s`: could not remove its state directory "
				 "either (%s)",
			    st->id, rerr->msg);
		vs_err_free(&rerr);
		return -1;
	}
	return vs_err_wrap(err, "removed the state directory of container `%s`, but whatever "
				"processes or cgroups its record named are not known and were "
				"left",
			   st->id);
}

int oci_cmd_delete(const struct vs_globals *g, int argc, char **argv, vs_err_t *err)
{
	bool force = false;
	int c;
	static const struct option opts[] = {{"force", no_argument, NULL, 'f'}, {0}};
	while ((c = getopt_long(argc, argv, "+f", opts, NULL)) != -1) {
		if (c != 'f')
			return usage_error(err, "delete", "[--force] ID");
		force = true;
	}
	if (optind != argc - 1)
		return usage_error(err, "delete", "[--force] ID");
	const char *id = argv[optind];
	struct container_state st;
	int rc = state_load(g, id, true, &st, err);
	/* a create killed before it named its directory left an unnamed one */
	state_sweep_unnamed(g);
	if (rc < 0) {
		if (force && st.garbled)
			rc = remove_garbled(&st, err);
		/* runc: forcing the delete of what is not there is not an error */
		else if (force && state_check_id(id, NULL) == 0 && err && *err &&
			 strstr((*err)->msg, "does not exist")) {
			vs_err_free(err);
			rc = 0;
		}
		state_release(&st);
		return rc;
	}
	enum container_status status = state_status(&st);
	int ret = 0;
	if ((status == STATUS_RUNNING || status == STATUS_CREATING) && !force) {
		ret = vs_err(err, 0, "cannot delete container `%s` that is not stopped: %s "
				     "(use --force)",
			     id, state_status_name(status));
	} else {
		/* a created container has not run anything of the user's yet: delete kills it;
		 * so does a stopped one whose create died, if its init outlived it */
		ret = lifecycle_kill_init(&st, 10000, err);
		if (ret == 0 && vmc_is_vm(&st))
			vmc_cleanup(&st);
		if (ret == 0)
			ret = lifecycle_destroy(&st, err);
	}
	state_release(&st);
	return ret;
}
