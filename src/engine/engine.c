/* `vessel container ...`: the command table, the containers' records, and the commands
 * that only read a record and ask the runtime (ls, inspect, logs, stop, start, rm, exec).
 * A record is STORE/containers/ID/record.json; the bundle, root and log sit beside it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "engine/engine.h"
#include "engine/internal.h"
#include "image/image.h"
#include "image/store.h"

char *engine_dir(const char *store, const char *id, const char *name)
{
	char *p;
	if (asprintf(&p, "%s/containers/%s%s%s", store, id ? id : "", name ? "/" : "",
		     name ? name : "") < 0)
		return NULL;
	return p;
}

int engine_write_record(const char *store, json_t *rec, vs_err_t *err)
{
	const char *id = json_string_value(json_object_get(rec, "id"));
	cleanup_free char *tmp = engine_dir(store, id, "record.json.tmp");
	cleanup_free char *path = engine_dir(store, id, "record.json");
	cleanup_free char *text = json_dumps(rec, JSON_INDENT(2));
	if (!tmp || !path || !text)
		return vs_err(err, ENOMEM, "container record");
	/* renamed into place: an `ls` never reads half a record */
	if (vs_write_file(tmp, text, strlen(text), err) < 0)
		return -1;
	if (rename(tmp, path) < 0)
		return vs_err(err, errno, "container record %s", path);
	return 0;
}

int engine_lock(const char *store, const char *id)
{
	cleanup_free char *dir = engine_dir(store, id, NULL);
	int fd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (fd >= 0)
		while (flock(fd, LOCK_EX) < 0 && errno == EINTR)
			;
	return fd;
}

json_t *engine_records(const char *store, vs_err_t *err)
{
	json_t *all = json_array();
	cleanup_free char *top = engine_dir(store, NULL, NULL);
	DIR *d = top ? opendir(top) : NULL;
	if (!d) {
		if (errno == ENOENT)
			return all;
		json_decref(all);
		vs_err(err, errno, "containers %s", top ? top : store);
		return NULL;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		cleanup_free char *path = engine_dir(store, e->d_name, "record.json");
		json_t *rec = path ? json_load_file(path, 0, NULL) : NULL;
		if (rec)
			json_array_append_new(all, rec);
	}
	closedir(d);
	return all;
}

json_t *engine_find(const char *store, const char *ref, vs_err_t *err)
{
	json_t *all = engine_records(store, err), *found = NULL;
	if (!all)
		return NULL;
	size_t i, n = 0;
	json_t *r;
	json_array_foreach(all, i, r)
	{
		const char *id = json_string_value(json_object_get(r, "id")) ?: "";
		const char *name = json_string_value(json_object_get(r, "name")) ?: "";
		if (strcmp(name, ref) == 0 || strcmp(id, ref) == 0) {
			found = r;
			n = 1;
			break;
		}
		if (strlen(ref) >= 4 && vs_str_has_prefix(id, ref)) {
			found = r;
			n++;
		}
	}
	if (n == 1)
		json_incref(found);
	else
		found = NULL;
	json_decref(all);
	if (!found)
		vs_err(err, 0, n ? "container `%s`: ambiguous id prefix" : "no container `%s`",
		       ref);
	return found;
}

/* Every entry of a container's directory but its record: a removal whose network was
 * not given back keeps the record, so that another rm finds the container and tries
 * again. */
static int rm_but_record(const char *dir, vs_err_t *err)
{
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : vs_err(err, errno, "remove %s", dir);
	struct dirent *e;
	int rc = 0;
	while (rc == 0 && (e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
		    strcmp(e->d_name, "record.json") != 0)
			rc = vs_remove_tree(dirfd(d), e->d_name, err) < 0
				 ? vs_err_wrap(err, "container directory %s", dir)
				 : 0;
	closedir(d);
	return rc;
}

/* The runtime's state, the root's mount, the files but the record. */
static int remove_parts(const struct vs_globals *g, const char *store, const char *id, json_t *rec,
			const char *status, vs_err_t *err)
{
	if (status) {
		char *dargv[] = {"delete", "--force", (char *)id, NULL};
		if (engine_runtime(g, dargv, -1, err) != 0)
			return vs_err_wrap(err, "container %s: runtime delete", id);
	}
	cleanup_free char *dir = engine_dir(store, id, NULL);
	cleanup_free char *rootfs = engine_dir(store, id, "rootfs");
	if (!dir || !rootfs)
		return vs_err(err, ENOMEM, "rm");
	if (!json_is_true(json_object_get(rec, "unmounted")) && access(rootfs, F_OK) == 0) {
		vs_err_t e2 = NULL;
		if (image_umount_root(rootfs, &e2) < 0 && e2 && e2->errnum != EINVAL) {
			vs_err_free(err);
			*err = e2;
			return vs_err_wrap(err, "container %s", id);
		}
		vs_err_free(&e2);
	}
	if (rm_but_record(dir, err) < 0)
		return vs_err_wrap(err, "container %s", id);
	return 0;
}

struct detach_job {
	const char *store;
	json_t *rec;
	int rc;
	vs_err_t err;
};

static void *detach_thread(void *arg)
{
	struct detach_job *j = arg;
	j->rc = engine_net_detach(j->store, j->rec, &j->err);
	return NULL;
}

int engine_remove(const struct vs_globals *g, const char *store, json_t *rec, bool force,
		  vs_err_t *err)
{
	const char *id = json_string_value(json_object_get(rec, "id"));
	cleanup_free char *status = NULL;
	if (!force) {
		status = engine_runtime_status(g, id);
		if (status && strcmp(status, "stopped") != 0)
			return vs_err(err, 0, "container %s is %s: stop it first, or rm --force",
				      json_string_value(json_object_get(rec, "name")), status);
	}
	/* held to the end: the monitor's own end waits for the removal */
	cleanup_close int lock = engine_lock(store, id);
	(void)lock;
	/* The network's DEL on a thread, the rest here meanwhile: they share nothing, and
	 * the DEL is most of a removal (a plugin exec per step, and in the kernel an RCU
	 * grace period per iptables rule and veth removed, 10 to 30 ms apiece on a 2-CPU
	 * host), which the runtime delete, the unmount and the file removal now overlap
	 * instead of following. */
	struct detach_job job = {.store = store, .rec = rec};
	pthread_t th;
	bool threaded = pthread_create(&th, NULL, detach_thread, &job) == 0;
	if (!threaded)
		detach_thread(&job);
	if (force)
		status = engine_runtime_status(g, id);
	vs_err_t parts_err = NULL;
	int rc = remove_parts(g, store, id, rec, status, &parts_err);
	if (threaded)
		pthread_join(th, NULL);
	/* the network's error first: it is why the record stays (rm again retries the DEL;
	 * the rest is gone or goes again harmlessly) */
	vs_err_t *first = job.rc < 0 ? &job.err : rc < 0 ? &parts_err : NULL;
	if (first && err && !*err)
		*err = *first, *first = NULL;
	vs_err_free(&job.err);
	vs_err_free(&parts_err);
	if (first)
		return -1;
	cleanup_free char *dir = engine_dir(store, id, NULL);
	if (!dir)
		return vs_err(err, ENOMEM, "rm");
	return vs_remove_tree(AT_FDCWD, dir, err) < 0 ? vs_err_wrap(err, "container %s", id) : 0;
}

static const char *status_of(const struct vs_globals *g, json_t *rec, char **owned)
{
	*owned = engine_runtime_status(g, json_string_value(json_object_get(rec, "id")));
	if (!*owned)
		return json_object_get(rec, "exit_code") ? "exited" : "created";
	return strcmp(*owned, "stopped") == 0 ? "exited" : *owned;
}

static int cmd_ls(const struct vs_globals *g, const char *store, int argc, char **argv,
		  vs_err_t *err)
{
	(void)argc, (void)argv;
	json_t *all = engine_records(store, err);
	if (!all)
		return -1;
	printf("%-12s  %-20s  %-30s  %s\n", "ID", "NAME", "IMAGE", "STATUS");
	size_t i;
	json_t *r;
	json_array_foreach(all, i, r)
	{
		cleanup_free char *owned = NULL;
		const char *st = status_of(g, r, &owned);
		printf("%-12.12s  %-20s  %-30s  %s\n", json_string_value(json_object_get(r, "id")),
		       json_string_value(json_object_get(r, "name")),
		       json_string_value(json_object_get(r, "image")), st);
	}
	json_decref(all);
	return 0;
}

static int cmd_inspect(const struct vs_globals *g, const char *store, int argc, char **argv,
		       vs_err_t *err)
{
	if (argc != 2)
		return vs_err(err, 0, "usage: vessel container inspect NAME|ID"), 2;
	json_t *rec = engine_find(store, argv[1], err);
	if (!rec)
		return -1;
	cleanup_free char *owned = NULL;
	json_object_set_new(rec, "status", json_string(status_of(g, rec, &owned)));
	cleanup_free char *cfg =
	    engine_dir(store, json_string_value(json_object_get(rec, "id")), "config.json");
	json_t *spec = cfg ? json_load_file(cfg, 0, NULL) : NULL;
	if (spec)
		json_object_set_new(rec, "config", spec);
	json_dumpf(rec, stdout, JSON_INDENT(2));
	putchar('\n');
	json_decref(rec);
	return 0;
}

static int copy_out(int fd, vs_err_t *err)
{
	char buf[65536];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (vs_write_all(1, buf, (size_t)n, err) < 0)
			return -1;
	return n < 0 ? vs_err(err, errno, "logs: read") : 0;
}

static bool still_running(const struct vs_globals *g, const char *id)
{
	char *status = engine_runtime_status(g, id);
	bool running = status && (strcmp(status, "running") == 0 || strcmp(status, "created") == 0);
	free(status);
	return running;
}

/* A detached container's stdout and stderr as written so far; -f: then what it writes
 * next, until it ends (woken by inotify, and every half second to look at its status). */
static int cmd_logs(const struct vs_globals *g, const char *store, int argc, char **argv,
		    vs_err_t *err)
{
	static const struct option opts[] = {{"follow", no_argument, NULL, 'f'}, {0}};
	bool follow = false;
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+f", opts, NULL)) != -1) {
		if (c != 'f')
			return vs_err(err, 0, "usage: vessel container logs [-f] NAME|ID"), 2;
		follow = true;
	}
	if (argc - optind != 1)
		return vs_err(err, 0, "usage: vessel container logs [-f] NAME|ID"), 2;
	json_t *rec = engine_find(store, argv[optind], err);
	if (!rec)
		return -1;
	cleanup_free char *id = strdup(json_string_value(json_object_get(rec, "id")));
	json_decref(rec);
	cleanup_free char *logs = id ? engine_dir(store, id, "logs") : NULL;
	if (!logs)
		return vs_err(err, ENOMEM, "logs");
	int fd = open(logs, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : vs_err(err, errno, "logs %s", logs);
	int in = follow ? inotify_init1(IN_CLOEXEC | IN_NONBLOCK) : -1;
	if (in >= 0)
		inotify_add_watch(in, logs, IN_MODIFY);
	int rc = copy_out(fd, err);
	while (rc == 0 && follow) {
		/* the last words come before the status says stopped: one more read after it */
		bool running = still_running(g, id);
		struct pollfd p = {.fd = in, .events = POLLIN};
		if (running && poll(&p, 1, 500) > 0) {
			char ev[4096];
			while (read(in, ev, sizeof(ev)) > 0)
				;
		}
		rc = copy_out(fd, err);
		if (!running)
			break;
	}
	if (in >= 0)
		close(in);
	close(fd);
	return rc;
}

static int cmd_stop(const struct vs_globals *g, const char *store, int argc, char **argv,
		    vs_err_t *err)
{
	int timeout = 10, c;
	optind = 0;
	opterr = 0;
	static const struct option opts[] = {{"time", required_argument, NULL, 't'}, {0}};
	while ((c = getopt_long(argc, argv, "+t:", opts, NULL)) != -1) {
		if (c != 't')
			return vs_err(err, 0, "usage: vessel container stop [-t SECONDS] NAME|ID"),
			       2;
		timeout = atoi(optarg);
	}
	if (optind != argc - 1)
		return vs_err(err, 0, "usage: vessel container stop [-t SECONDS] NAME|ID"), 2;
	json_t *rec = engine_find(store, argv[optind], err);
	if (!rec)
		return -1;
	char *id = (char *)json_string_value(json_object_get(rec, "id"));
	const char *sig = json_string_value(json_object_get(rec, "stop_signal")) ?: "SIGTERM";
	int rc = 0;
	cleanup_free char *st = engine_runtime_status(g, id);
	if (st && strcmp(st, "running") == 0) {
		/* a failed kill (the container just ended) shows in the status below */
		char *kargv[] = {"kill", id, (char *)sig, NULL};
		engine_runtime(g, kargv, -1, NULL);
		struct timespec t0, now;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (;;) {
			free(st);
			st = engine_runtime_status(g, id);
			if (!st || strcmp(st, "running") != 0)
				break;
			clock_gettime(CLOCK_MONOTONIC, &now);
			if (now.tv_sec - t0.tv_sec >= timeout) {
				/* StopSignal not heeded in time */
				char *k9[] = {"kill", id, "SIGKILL", NULL};
				engine_runtime(g, k9, -1, NULL);
				t0.tv_sec = now.tv_sec + 3600;
			}
			usleep(50000);
		}
	}
	/* the monitor of a detached container does the same when it sees the end; a
	 * foreground one's engine may be gone */
	int lock = engine_lock(store, id);
	if (engine_net_detach(store, rec, err) < 0)
		rc = -1;
	if (lock >= 0)
		close(lock);
	json_decref(rec);
	return rc;
}

static int cmd_rm(const struct vs_globals *g, const char *store, int argc, char **argv,
		  vs_err_t *err)
{
	bool force = false;
	int i = 1;
	if (i < argc && (strcmp(argv[i], "-f") == 0 || strcmp(argv[i], "--force") == 0)) {
		force = true;
		i++;
	}
	if (i >= argc)
		return vs_err(err, 0, "usage: vessel container rm [-f] NAME|ID..."), 2;
	for (; i < argc; i++) {
		json_t *rec = engine_find(store, argv[i], err);
		if (!rec)
			return -1;
		int rc = engine_remove(g, store, rec, force, err);
		json_decref(rec);
		if (rc < 0)
			return -1;
	}
	return 0;
}

#define EXEC_USAGE                                                                                 \
	"usage: vessel container exec [-i] [-t] [-e K=V]... [-u USER[:GROUP]] [-w DIR] NAME|ID "   \
	"CMD..."

/* podman's exec flags, as the runtime's exec takes them: a user by name is looked up in
 * the container's own /etc/passwd, as run's --user. */
static int cmd_exec(const struct vs_globals *g, const char *store, int argc, char **argv,
		    vs_err_t *err)
{
	static const struct option opts[] = {
	    {"interactive", no_argument, NULL, 'i'},   {"tty", no_argument, NULL, 't'},
	    {"env", required_argument, NULL, 'e'},     {"user", required_argument, NULL, 'u'},
	    {"workdir", required_argument, NULL, 'w'}, {0},
	};
	/* "exec", the flags (two words each at most), the id, the command, NULL */
	cleanup_free char **xargv = calloc(2 * (size_t)argc + 4, sizeof(*xargv));
	if (!xargv)
		return vs_err(err, ENOMEM, "exec");
	size_t n = 0;
	xargv[n++] = "exec";
	bool interactive = false;
	const char *user = NULL;
	optind = 0;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "+ite:u:w:", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			interactive = true;
			break;
		case 't':
			xargv[n++] = "-t";
			break;
		case 'e':
			if (engine_check_env(optarg, err) < 0)
				return 2;
			xargv[n++] = "-e";
			xargv[n++] = optarg;
			break;
		case 'u':
			user = optarg;
			break;
		case 'w':
			if (engine_check_workdir(optarg, err) < 0)
				return 2;
			xargv[n++] = "--cwd";
			xargv[n++] = optarg;
			break;
		default:
			return vs_err(err, 0, EXEC_USAGE), 2;
		}
	}
	if (argc - optind < 2)
		return vs_err(err, 0, EXEC_USAGE), 2;
	json_t *rec = engine_find(store, argv[optind], err);
	if (!rec)
		return -1;
	const char *id = json_string_value(json_object_get(rec, "id"));
	char ids[32];
	cleanup_free char *rootfs = user ? engine_dir(store, id, "rootfs") : NULL;
	unsigned uid, gid;
	int rc = -1;
	if (user && (!rootfs || engine_user_ids(rootfs, user, &uid, &gid, err) < 0))
		goto out;
	if (user) {
		snprintf(ids, sizeof(ids), "%u:%u", uid, gid);
		xargv[n++] = "-u";
		xargv[n++] = ids;
	}
	xargv[n++] = (char *)id;
	memcpy(xargv + n, argv + optind + 1, (size_t)(argc - optind - 1) * sizeof(*xargv));
	if (interactive || engine_stdin_null(err) == 0)
		rc = engine_runtime_forward(g, xargv, err);
out:
	json_decref(rec);
	return rc;
}

static int cmd_diff(const struct vs_globals *g, const char *store, int argc, char **argv,
		    vs_err_t *err)
{
	(void)g;
	if (argc != 2)
		return vs_err(err, 0, "usage: vessel container diff NAME|ID"), 2;
	json_t *rec = engine_find(store, argv[1], err);
	if (!rec)
		return -1;
	cleanup_free char *rw =
	    engine_dir(store, json_string_value(json_object_get(rec, "id")), "rw");
	int rc = rw ? image_diff(store, json_string_value(json_object_get(rec, "image_id")), rw,
				 stdout, err)
		    : vs_err(err, ENOMEM, "diff");
	json_decref(rec);
	return rc;
}

/* The poststart hook config.c gives every detached container (not in the help): the
 * runtime runs it once the container's process has been exec'd, so its mark is what
 * `run -d` waits for; "running" in the runtime's state comes before an exec that may
 * still fail. */
static int cmd_started(const struct vs_globals *g, const char *store, int argc, char **argv,
		       vs_err_t *err)
{
	(void)g;
	if (argc != 2 || !*argv[1] || strchr(argv[1], '/') || argv[1][0] == '.')
		return vs_err(err, 0, "usage: vessel container started ID"), 2;
	cleanup_free char *mark = engine_dir(store, argv[1], "started");
	return mark ? vs_write_file(mark, "", 0, err) : vs_err(err, ENOMEM, "started");
}

static const char engine_help[] =
    "usage: vessel container [--store DIR] COMMAND ...\n"
    "\n"
    "commands:\n"
    "  run      run [-d] [--rm] [--name N] [-e K=V] [-v /HOST:/CTR[:ro]]\n"
    "               [--network NAME|none|host] [-p [IP:]HOST:CTR[/tcp|udp]]\n"
    "               [--net-rate N[k|m|g]bit] [--memory N] [--cpus N] [--user U] [-w DIR]\n"
    "               IMAGE [CMD...]\n"
    "  ls       list the containers and their status\n"
    "  inspect  a container's record, status and runtime config: inspect NAME|ID\n"
    "  logs     a detached container's output: logs [-f] NAME|ID (-f: follow it)\n"
    "  exec     run a process in a running container: exec [-i] [-t] [-e K=V] [-u U] [-w D] "
    "NAME|ID CMD...\n"
    "  stop     StopSignal, then SIGKILL after -t SECONDS (10): stop NAME|ID\n"
    "  start    an exited container again, detached: start NAME|ID\n"
    "  rm       remove a stopped container (-f: any): rm [-f] NAME|ID...\n"
    "  diff     what a container changed in its root (A, C, D lines): diff NAME|ID\n"
    "\n"
    "--store DIR (before COMMAND): the image store, which holds the containers and the\n"
    "networks too (default " DEFAULT_STORE "). The default network is `vessel`\n"
    "(vessel network --help).\n";

int engine_main(const struct vs_globals *g, int argc, char **argv, vs_err_t *err)
{
	const char *store = DEFAULT_STORE;
	int i = 1;
	if (i + 1 < argc && strcmp(argv[i], "--store") == 0) {
		store = argv[i + 1];
		i += 2;
	}
	if (i >= argc || strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
		fputs(engine_help, i >= argc ? stderr : stdout);
		return i >= argc ? 2 : 0;
	}
	/* absolute: the bundle's root path and the overlay's dirs are named by it */
	if (vs_mkdir_p(store, 0700, err) < 0)
		return -1;
	cleanup_free char *abs = realpath(store, NULL);
	if (!abs)
		return vs_err(err, errno, "store %s", store);
	static const struct {
		const char *name;
		int (*fn)(const struct vs_globals *g, const char *store, int argc, char **argv,
			  vs_err_t *err);
	} table[] = {
	    {"run", engine_run},      {"ls", cmd_ls},	       {"inspect", cmd_inspect},
	    {"logs", cmd_logs},	      {"stop", cmd_stop},      {"rm", cmd_rm},
	    {"exec", cmd_exec},	      {"start", engine_start}, {"diff", cmd_diff},
	    {"started", cmd_started},
	};
	size_t k = 0;
	while (k < ARRAY_SIZE(table) && strcmp(table[k].name, argv[i]) != 0)
		k++;
	if (k == ARRAY_SIZE(table)) {
		vs_err(err, 0, "container: unknown command `%s` (see vessel container --help)",
		       argv[i]);
		vs_report(*err);
		return 2;
	}
	int rc = table[k].fn(g, abs, argc - i, argv + i, err);
	/* 2 with no error is a container's own status (run, exec), not a usage error */
	if (rc == 2 && *err) {
		vs_report(*err);
		return 2;
	}
	return rc;
}
