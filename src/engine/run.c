/* `vessel container run`: the options, the container's directory and record, its root
 * (the overlay of the image's layers), its network, its runtime config; then the
 * runtime's run, waited for here or by a detached monitor. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <linux/close_range.h>
#include <sys/file.h>
#include <sys/random.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "engine/internal.h"
#include "image/image.h"
#include "image/store.h"
#include "oci/caps.h"

#define RUN_USAGE                                                                                  \
	"usage: vessel container run [-d] [-i] [-t] [--rm] [--name N] [-e K=V] "                   \
	"[-p [IP:|[IPv6]:]HOST:CTR[/udp]] [--network NAME|none|host] [-v /HOST:/CTR[:ro]] "        \
	"[--memory N] [--cpus N] [--net-rate RATE] [--user U] [-w DIR] [--cap-add CAP] "           \
	"[--cap-drop CAP] [--sysctl K=V] [--entrypoint CMD] [--hostname H] [--read-only] "         \
	"IMAGE [CMD...]"

enum {
	OPT_NAME = 256,
	OPT_RM,
	OPT_NETWORK,
	OPT_MEMORY,
	OPT_CPUS,
	OPT_NET_RATE,
	OPT_CAP_ADD,
	OPT_CAP_DROP,
	OPT_SYSCTL,
	OPT_ENTRYPOINT,
	OPT_HOSTNAME,
	OPT_READ_ONLY
};

/* docker's and podman's --entrypoint: one command, or (podman) a JSON array of its
 * words; "" leaves none. */
static int entrypoint_arg(const char *arg, json_t **out, vs_err_t *err)
{
	json_decref(*out);
	if (arg[0] != '[') {
		*out = *arg ? json_pack("[s]", arg) : json_array();
		return 0;
	}
	*out = json_loads(arg, 0, NULL);
	size_t i;
	json_t *v;
	bool ok = json_is_array(*out);
	json_array_foreach(*out, i, v) ok = ok && json_is_string(v);
	if (!ok) {
		json_decref(*out);
		*out = NULL;
		return vs_err(err, 0, "--entrypoint `%s`: not a JSON array of strings", arg);
	}
	return 0;
}

/* RFC 1123 labels, at most the kernel's 64 bytes */
static bool hostname_ok(const char *h)
{
	size_t n = strlen(h);
	if (n == 0 || n > 64 || h[0] == '-' || h[0] == '.' || h[n - 1] == '-' || h[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)h[i]) && h[i] != '-' && h[i] != '.')
			return false;
	return true;
}

/* podman's and docker's spellings: net_raw, NET_RAW, CAP_NET_RAW, ALL */
static int cap_arg(const char *flag, const char *arg, uint64_t *mask, vs_err_t *err)
{
	char name[64];
	size_t n = strlen(arg), off = strncasecmp(arg, "CAP_", 4) == 0 ? 0 : 4;
	if (n == 0 || n + off >= sizeof(name))
		return vs_err(err, 0, "%s `%s`: not a capability", flag, arg);
	memcpy(name, "CAP_", 4);
	for (size_t i = 0; i <= n; i++)
		name[off + i] = (char)toupper((unsigned char)arg[i]);
	if (strcmp(name, "CAP_ALL") == 0) {
		*mask = ~0ull;
		return 0;
	}
	int cap = caps_from_name(name);
	if (cap < 0)
		return vs_err(err, 0, "%s `%s`: not a capability", flag, arg);
	*mask |= 1ull << cap;
	return 0;
}

static int parse_opt(int c, struct engine_opts *o, vs_err_t *err)
{
	switch (c) {
	case 'd':
		o->detach = true;
		return 0;
	case 'i':
		o->interactive = true;
		return 0;
	case 't':
		o->tty = true;
		return 0;
	case OPT_NAME:
		if (!*optarg || strchr(optarg, '/') || strchr(optarg, ' ') || optarg[0] == '.')
			return vs_err(err, 0, "--name `%s`: not a container name", optarg);
		o->name = optarg;
		return 0;
	case OPT_RM:
		o->rm = true;
		return 0;
	case 'e':
		if (engine_check_env(optarg, err) < 0)
			return -1;
		json_array_append_new(o->env, json_string(optarg));
		return 0;
	case 'p':
		if (engine_parse_port(optarg, err) < 0)
			return -1;
		json_array_append_new(o->ports, json_string(optarg));
		return 0;
	case OPT_NET_RATE:
		if (engine_parse_rate(optarg, &o->net_rate) < 0)
			return vs_err(err, 0,
				      "--net-rate `%s`: expected bits per second "
				      "(N[k|m|g][bit], as tc's: 10mbit)",
				      optarg);
		return 0;
	case OPT_NETWORK:
		if (!*optarg || strchr(optarg, '/') || optarg[0] == '.')
			return vs_err(err, 0, "--network `%s`: not a network name", optarg);
		o->network = optarg;
		return 0;
	case 'v': {
		const char *colon = strchr(optarg, ':');
		const char *mode = colon ? strchr(colon + 1, ':') : NULL;
		if (!colon || optarg[0] != '/' || colon[1] != '/' ||
		    (mode && strcmp(mode, ":ro") != 0 && strcmp(mode, ":rw") != 0))
			return vs_err(err, 0, "-v `%s`: expected /HOST:/CONTAINER[:ro|:rw]",
				      optarg);
		json_array_append_new(o->volumes, json_string(optarg));
		return 0;
	}
	case OPT_MEMORY:
		if (vs_parse_size(optarg, &o->memory) < 0 || o->memory == 0)
			return vs_err(err, 0, "--memory `%s`: not a size", optarg);
		return 0;
	case OPT_CPUS: {
		char *end;
		o->cpus = strtod(optarg, &end);
		if (*end || !(o->cpus > 0))
			return vs_err(err, 0, "--cpus `%s`: not a positive number", optarg);
		return 0;
	}
	case 'u':
		o->user = optarg;
		return 0;
	case OPT_CAP_ADD:
		return cap_arg("--cap-add", optarg, &o->cap_add, err);
	case OPT_CAP_DROP:
		return cap_arg("--cap-drop", optarg, &o->cap_drop, err);
	case OPT_ENTRYPOINT:
		return entrypoint_arg(optarg, &o->entrypoint, err);
	case OPT_HOSTNAME:
		if (!hostname_ok(optarg))
			return vs_err(err, 0, "--hostname `%s`: not a host name", optarg);
		o->hostname = optarg;
		return 0;
	case OPT_READ_ONLY:
		o->read_only = true;
		return 0;
	case OPT_SYSCTL: {
		/* the runtime decides which keys are namespaced; the value may hold '=' */
		const char *eq = strchr(optarg, '=');
		if (!eq || eq == optarg)
			return vs_err(err, 0, "--sysctl `%s`: expected KEY=VALUE", optarg);
		cleanup_free char *key = strndup(optarg, (size_t)(eq - optarg));
		if (!key)
			return vs_err(err, ENOMEM, "--sysctl");
		json_object_set_new(o->sysctls, key, json_string(eq + 1));
		return 0;
	}
	case 'w':
		if (engine_check_workdir(optarg, err) < 0)
			return -1;
		o->workdir = optarg;
		return 0;
	default:
		return vs_err(err, 0, RUN_USAGE);
	}
}

static int parse_opts(int argc, char **argv, struct engine_opts *o, int *first, vs_err_t *err)
{
	static const struct option opts[] = {
	    {"detach", no_argument, NULL, 'd'},
	    {"interactive", no_argument, NULL, 'i'},
	    {"tty", no_argument, NULL, 't'},
	    {"name", required_argument, NULL, OPT_NAME},
	    {"rm", no_argument, NULL, OPT_RM},
	    {"env", required_argument, NULL, 'e'},
	    {"publish", required_argument, NULL, 'p'},
	    {"network", required_argument, NULL, OPT_NETWORK},
	    {"volume", required_argument, NULL, 'v'},
	    {"memory", required_argument, NULL, OPT_MEMORY},
	    {"cpus", required_argument, NULL, OPT_CPUS},
	    {"net-rate", required_argument, NULL, OPT_NET_RATE},
	    {"user", required_argument, NULL, 'u'},
	    {"workdir", required_argument, NULL, 'w'},
	    {"cap-add", required_argument, NULL, OPT_CAP_ADD},
	    {"cap-drop", required_argument, NULL, OPT_CAP_DROP},
	    {"sysctl", required_argument, NULL, OPT_SYSCTL},
	    {"entrypoint", required_argument, NULL, OPT_ENTRYPOINT},
	    {"hostname", required_argument, NULL, OPT_HOSTNAME},
	    {"read-only", no_argument, NULL, OPT_READ_ONLY},
	    {0},
	};
	optind = 0;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "+dite:p:v:u:w:", opts, NULL)) != -1)
		if (parse_opt(c, o, err) < 0)
			return -1;
	bool named =
	    !o->network || (strcmp(o->network, "none") != 0 && strcmp(o->network, "host") != 0);
	if (!named && (json_array_size(o->ports) || o->net_rate))
		return vs_err(err, 0, "%s: needs a named network, not --network %s",
			      json_array_size(o->ports) ? "-p" : "--net-rate", o->network);
	/* before anything is made: the runtime would refuse it only after the network */
	const char *key;
	json_t *v;
	json_object_foreach(o->sysctls, key, v)
	{
		if (o->network && strcmp(o->network, "host") == 0 && strncmp(key, "net.", 4) == 0)
			return vs_err(err, 0,
				      "--sysctl %s: needs the container's own network, not "
				      "--network host",
				      key);
	}
	if (optind >= argc)
		return vs_err(err, 0, RUN_USAGE);
	*first = optind;
	return 0;
}

static int name_free(const char *store, const char *name, vs_err_t *err)
{
	json_t *all = engine_records(store, err);
	if (!all)
		return -1;
	size_t i;
	json_t *r;
	int rc = 0;
	json_array_foreach(all, i, r)
	{
		if (strcmp(json_string_value(json_object_get(r, "name")) ?: "", name) == 0) {
			rc = vs_err(err, 0, "container name `%s` is in use by %s", name,
				    json_string_value(json_object_get(r, "id")));
			break;
		}
	}
	json_decref(all);
	return rc;
}

/* After the container's end: its network is given back at once (the lease, the port
 * rules), its peers' /etc/hosts lose it; the record stays until rm (or goes now, --rm). */
static int after_exit(const struct vs_globals *g, const char *store, json_t *rec, int status,
		      vs_err_t *err)
{
	if (json_is_true(json_object_get(rec, "rm")))
		return engine_remove(g, store, rec, true, err);
	const char *id = json_string_value(json_object_get(rec, "id"));
	cleanup_close int lock = engine_lock(store, id);
	cleanup_free char *path = engine_dir(store, id, "record.json");
	/* an rm got here first */
	if (lock < 0 || !path || access(path, F_OK) < 0)
		return 0;
	if (engine_net_detach(store, rec, err) < 0)
		return -1;
	if (status < 0)
		return 0;
	json_object_set_new(rec, "exit_code", json_integer(status));
	return engine_write_record(store, rec, err);
}

/* The last line of a failed start's log, for the error (the log goes with the container). */
static void last_line(const char *store, const char *id, char *out, size_t size)
{
	cleanup_free char *logs = engine_dir(store, id, "logs"), *text = NULL;
	size_t len = 0;
	out[0] = 0;
	if (!logs || vs_read_file(logs, 1 << 20, &text, &len, NULL) < 0)
		return;
	while (len && text[len - 1] == '\n')
		text[--len] = 0;
	const char *nl = strrchr(text, '\n');
	snprintf(out, size, "%s", nl ? nl + 1 : text);
}

/* Returns once the container's process has been exec'd (the poststart hook's mark, see
 * cmd_started), or has already ended, so that the caller's next command (an exec, an
 * rm) finds it: the monitor runs the runtime asynchronously. An end without the mark is
 * a failed start (unless --rm took the container with it). */
static int wait_started(const char *store, json_t *rec, pid_t monitor, vs_err_t *err)
{
	const char *id = json_string_value(json_object_get(rec, "id"));
	cleanup_free char *mark = engine_dir(store, id, "started");
	cleanup_free char *path = engine_dir(store, id, "record.json");
	if (!mark || !path)
		return vs_err(err, ENOMEM, "run");
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (access(mark, F_OK) == 0)
			return 0;
		int wst;
		if (waitpid(monitor, &wst, WNOHANG) == monitor) {
			if (access(mark, F_OK) == 0 ||
			    (json_is_true(json_object_get(rec, "rm")) && access(path, F_OK) < 0))
				return 0;
			char why[512];
			last_line(store, id, why, sizeof(why));
			return vs_err(err, 0, "container %s did not start: %s",
				      json_string_value(json_object_get(rec, "name")),
				      *why ? why : "(nothing in its log)");
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec > 60)
			return vs_err(err, ETIMEDOUT, "container %s: not started after 60 s",
				      json_string_value(json_object_get(rec, "name")));
		usleep(5000);
	}
}

/* The detached container's monitor: the runtime's run, waited for in a session of its
 * own, then after_exit. It holds nothing of the caller's: stdin is /dev/null, stdout and
 * stderr the log, no other fd (a caller reading our output to its end, or holding a
 * lock, must not wait for the container). */
static int detach(const struct vs_globals *g, const char *store, json_t *rec, char **rargv,
		  vs_err_t *err)
{
	const char *id = json_string_value(json_object_get(rec, "id"));
	cleanup_free char *logs = engine_dir(store, id, "logs");
	int fd = logs ? open(logs, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : -1;
	if (fd < 0)
		return vs_err(err, errno, "container %s: logs", id);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		close(fd);
		return vs_err(err, errno, "container %s: fork", id);
	}
	if (pid == 0) {
		setsid();
		int null = open("/dev/null", O_RDONLY);
		if (null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		close_range(3, ~0U, 0);
		vs_err_t e = NULL;
		int status = engine_runtime(g, rargv, -1, &e);
		if (status < 0) {
			vs_warn("%s", e->msg);
			vs_err_free(&e);
		}
		if (after_exit(g, store, rec, status, &e) < 0) {
			vs_warn("%s", e->msg);
			vs_err_free(&e);
		}
		_exit(0);
	}
	close(fd);
	if (wait_started(store, rec, pid, err) < 0)
		return -1;
	printf("%s\n", id);
	return 0;
}

static json_t *new_record(const char *id, const char *name, const char *ref, json_t *image_rec,
			  const struct engine_opts *o)
{
	char hostname[65];
	snprintf(hostname, sizeof(hostname), "%.12s", id);
	if (o->hostname)
		snprintf(hostname, sizeof(hostname), "%s", o->hostname);
	return json_pack("{s:s, s:s, s:s, s:s, s:O, s:I, s:b, s:b, s:s, s:O, s:I}", "id", id,
			 "name", name, "hostname", hostname, "image", ref, "image_id",
			 json_object_get(image_rec, "id"), "created", (json_int_t)time(NULL),
			 "detach", o->detach, "rm", o->rm, "network",
			 o->network ? o->network : "vessel", "ports", o->ports, "net_rate",
			 (json_int_t)o->net_rate);
}

int engine_run(const struct vs_globals *g, const char *store_path, int argc, char **argv,
	       vs_err_t *err)
{
	struct engine_opts o = {.env = json_array(),
				.volumes = json_array(),
				.ports = json_array(),
				.sysctls = json_object()};
	int first = 0, rc = -1;
	json_t *image_rec = NULL, *rec = NULL;
	struct store s = {.fd = -1, .lock = -1};
	cleanup_free char *dir = NULL, *rootfs = NULL, *rw = NULL, *top = NULL;
	bool mounted = false;
	int names_lock = -1;
	if (parse_opts(argc, argv, &o, &first, err) < 0) {
		rc = 2;
		goto out;
	}
	const char *ref = argv[first];
	unsigned char rnd[16];
	char id[33];
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
		vs_err(err, errno, "container id");
		goto out;
	}
	for (int i = 0; i < 16; i++)
		sprintf(id + 2 * i, "%02x", rnd[i]);
	char shortid[13];
	snprintf(shortid, sizeof(shortid), "%.12s", id);
	const char *name = o.name ? o.name : shortid;
	/* two runs with one --name: the check and the record under one lock */
	top = engine_dir(store_path, NULL, NULL);
	if (!top || vs_mkdir_p(top, 0700, err) < 0)
		goto out;
	names_lock = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (names_lock < 0 || flock(names_lock, LOCK_EX) < 0) {
		vs_err(err, errno, "containers %s: lock", top);
		goto out;
	}
	if (name_free(store_path, name, err) < 0)
		goto out;
	if (store_open(&s, store_path, false, err) < 0)
		goto out;
	bool by_name;
	image_rec = store_find(&s, ref, &by_name, err);
	if (!image_rec) {
		vs_err_wrap(err, "image `%s`", ref);
		goto out;
	}
	dir = engine_dir(store_path, id, NULL);
	rootfs = engine_dir(store_path, id, "rootfs");
	rw = engine_dir(store_path, id, "rw");
	if (!dir || !rootfs || !rw) {
		vs_err(err, ENOMEM, "run");
		goto out;
	}
	if (vs_mkdir_p(dir, 0700, err) < 0)
		goto out;
	rec = new_record(id, name, ref, image_rec, &o);
	if (!rec) {
		vs_err(err, ENOMEM, "run");
		goto out;
	}
	if (engine_write_record(store_path, rec, err) < 0)
		goto out;
	close(names_lock);
	names_lock = -1;
	bool copied;
	if (image_mount_root(store_path, ref, rootfs, rw, &copied, err) < 0)
		goto fail;
	mounted = true;
	/* attached before the config is written: the config names the netns, /etc/hosts
	 * the address */
	if (engine_net_attach(store_path, rec, err) < 0 ||
	    engine_write_record(store_path, rec, err) < 0)
		goto fail;
	if (engine_make_config(g, &s, image_rec, &o, argv + first + 1, rec, dir, rootfs, err) < 0 ||
	    engine_write_record(store_path, rec, err) < 0)
		goto fail;
	store_close(&s);
	if (engine_net_named(rec) &&
	    engine_refresh_peers(store_path, json_string_value(json_object_get(rec, "network")),
				 err) < 0)
		goto fail;
	/* --keep: the runtime's state stays "stopped" after the end, so that `ls` says exited
	 * until rm deletes it */
	char *rargv[] = {"run", "--keep", "--bundle", dir, id, NULL};
	if (o.detach) {
		if (detach(g, store_path, rec, rargv, err) < 0)
			goto fail;
		rc = 0;
		goto out;
	}
	/* as docker's and podman's: the container reads our stdin only if asked to */
	if (!o.interactive && engine_stdin_null(err) < 0)
		goto fail;
	rc = engine_runtime_forward(g, rargv, err);
	if (rc >= 0 && after_exit(g, store_path, rec, rc, err) < 0)
		rc = -1;
	goto out;
fail:
	if (rec) {
		if (!mounted)
			json_object_set_new(rec, "unmounted", json_true());
		vs_err_t e2 = NULL;
		engine_remove(g, store_path, rec, true, &e2);
		vs_err_free(&e2);
	}
out:
	if (names_lock >= 0)
		close(names_lock);
	store_close(&s);
	json_decref(image_rec);
	json_decref(rec);
	json_decref(o.env);
	json_decref(o.volumes);
	json_decref(o.ports);
	json_decref(o.sysctls);
	json_decref(o.entrypoint);
	return rc;
}

/* `start NAME|ID`: an exited container again, detached, on the same root and config; its
 * network attached anew (the address may differ: the peers' /etc/hosts follow). */
int engine_start(const struct vs_globals *g, const char *store, int argc, char **argv,
		 vs_err_t *err)
{
	if (argc != 2)
		return vs_err(err, 0, "usage: vessel container start NAME|ID"), 2;
	json_t *rec = engine_find(store, argv[1], err);
	if (!rec)
		return -1;
	char *id = (char *)json_string_value(json_object_get(rec, "id"));
	cleanup_free char *dir = engine_dir(store, id, NULL);
	cleanup_free char *st = engine_runtime_status(g, id);
	cleanup_free char *mark = NULL;
	int rc = -1;
	if (!dir) {
		vs_err(err, ENOMEM, "start");
		goto out;
	}
	if (st && strcmp(st, "stopped") != 0) {
		vs_err(err, 0, "container %s is %s", argv[1], st);
		goto out;
	}
	if (st) {
		char *dargv[] = {"delete", id, NULL};
		if (engine_runtime(g, dargv, -1, err) != 0) {
			vs_err_wrap(err, "container %s: runtime delete", argv[1]);
			goto out;
		}
	}
	int lock = engine_lock(store, id);
	/* a monitor that never got to detach (killed) left the old attachment */
	int r = engine_net_detach(store, rec, err);
	if (lock >= 0)
		close(lock);
	if (r < 0)
		goto out;
	mark = engine_dir(store, id, "started");
	if (mark)
		unlink(mark);
	if (engine_renew_hook(store, rec, dir, err) < 0)
		goto out;
	json_object_del(rec, "exit_code");
	json_object_del(rec, "ip");
	json_object_del(rec, "gateway");
	json_object_del(rec, "ip6");
	json_object_del(rec, "gateway6");
	json_object_del(rec, "netns");
	json_object_set_new(rec, "detach", json_true());
	if (engine_net_attach(store, rec, err) < 0)
		goto out;
	if (engine_write_hosts(store, rec, err) < 0 || engine_write_record(store, rec, err) < 0 ||
	    (engine_net_named(rec) &&
	     engine_refresh_peers(store, json_string_value(json_object_get(rec, "network")), err) <
		 0))
		goto undo;
	char *rargv[] = {"run", "--keep", "--bundle", dir, id, NULL};
	if (detach(g, store, rec, rargv, err) == 0) {
		rc = 0;
		goto out;
	}
undo:;
	vs_err_t e2 = NULL;
	engine_net_detach(store, rec, &e2);
	vs_err_free(&e2);
out:
	json_decref(rec);
	return rc;
}
