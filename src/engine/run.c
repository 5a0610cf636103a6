/* `vessel container run`: an image's config turned into a bundle under the container's
 * directory, its root the overlay of the image's layers, then the runtime's run. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "base/json.h"
#include "base/util.h"
#include "engine/internal.h"
#include "image/bundle.h"
#include "image/image.h"
#include "image/store.h"

struct run_opts {
	bool detach, rm;
	const char *name, *network, *user, *workdir;
	uint64_t memory;
	double cpus;
	json_t *env, *volumes; /* arrays of strings */
};

enum { OPT_NAME = 256, OPT_RM, OPT_NETWORK, OPT_MEMORY, OPT_CPUS, OPT_NET_RATE };

static int parse_opts(int argc, char **argv, struct run_opts *o, int *first, vs_err_t *err)
{
	static const struct option opts[] = {
	    {"detach", no_argument, NULL, 'd'},
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
	    {0},
	};
	optind = 0;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "+de:p:v:u:w:", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			o->detach = true;
			break;
		case OPT_NAME:
			o->name = optarg;
			break;
		case OPT_RM:
			o->rm = true;
			break;
		case 'e':
			if (!strchr(optarg, '=') || optarg[0] == '=')
				return vs_err(err, 0, "-e `%s`: expected KEY=VALUE", optarg);
			json_array_append_new(o->env, json_string(optarg));
			break;
		case 'p':
		case OPT_NET_RATE:
			/* both need a named network (src/network/, not merged yet) */
			return vs_err(err, 0, "%s `%s`: needs a named network, which this build "
				      "has not (only --network none|host)",
				      c == 'p' ? "-p" : "--net-rate", optarg);
		case OPT_NETWORK:
			o->network = optarg;
			break;
		case 'v': {
			const char *colon = strchr(optarg, ':');
			const char *mode = colon ? strchr(colon + 1, ':') : NULL;
			if (!colon || optarg[0] != '/' || colon[1] != '/' ||
			    (mode && strcmp(mode, ":ro") != 0 && strcmp(mode, ":rw") != 0))
				return vs_err(err, 0, "-v `%s`: expected /HOST:/CONTAINER[:ro|:rw]",
					      optarg);
			json_array_append_new(o->volumes, json_string(optarg));
			break;
		}
		case OPT_MEMORY:
			if (vs_parse_size(optarg, &o->memory) < 0 || o->memory == 0)
				return vs_err(err, 0, "--memory `%s`: not a size", optarg);
			break;
		case OPT_CPUS: {
			char *end;
			o->cpus = strtod(optarg, &end);
			if (*end || !(o->cpus > 0))
				return vs_err(err, 0, "--cpus `%s`: not a positive number", optarg);
			break;
		}
		case 'u':
			o->user = optarg;
			break;
		case 'w':
			if (optarg[0] != '/')
				return vs_err(err, 0, "-w `%s`: not an absolute path", optarg);
			o->workdir = optarg;
			break;
		default:
			return vs_err(err, 0,
				      "usage: vessel container run [-d] [--rm] [--name N] [-e K=V] "
				      "[-v HOST:CTR[:ro]] [--network none|host] [--memory N] "
				      "[--cpus N] [--user U] [-w DIR] IMAGE [CMD...]");
		}
	}
	if (o->network && strcmp(o->network, "none") != 0 && strcmp(o->network, "host") != 0)
		return vs_err(err, 0, "--network `%s`: named networks are not in this build "
			      "(none or host)", o->network);
	if (optind >= argc)
		return vs_err(err, 0, "usage: vessel container run [OPTIONS] IMAGE [CMD...]");
	*first = optind;
	return 0;
}

/* uid[:gid] or names looked up in the container's own /etc/passwd and /etc/group. */
static int lookup(const char *rootfs, const char *file, const char *name, unsigned *id,
		  unsigned *gid)
{
	char *end;
	unsigned long v = strtoul(name, &end, 10);
	if (*name && !*end) {
		*id = (unsigned)v;
		return 1;
	}
	cleanup_free char *path = NULL;
	if (asprintf(&path, "%s/etc/%s", rootfs, file) < 0)
		return -1;
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	char line[1024];
	int found = -1;
	while (fgets(line, sizeof(line), f)) {
		char *save, *n = strtok_r(line, ":", &save);
		strtok_r(NULL, ":", &save);
		char *u = strtok_r(NULL, ":", &save), *gr = strtok_r(NULL, ":", &save);
		if (n && u && strcmp(n, name) == 0) {
			*id = (unsigned)strtoul(u, NULL, 10);
			if (gid && gr)
				*gid = (unsigned)strtoul(gr, NULL, 10);
			found = 0;
			break;
		}
	}
	fclose(f);
	return found;
}

static int resolve_user(const char *rootfs, const char *spec, json_t *user, vs_err_t *err)
{
	cleanup_free char *copy = strdup(spec);
	char *grp = strchr(copy, ':');
	if (grp)
		*grp++ = 0;
	unsigned uid = 0, gid = 0;
	int r = lookup(rootfs, "passwd", copy, &uid, &gid);
	if (r < 0)
		return vs_err(err, 0, "user `%s`: not in the image's /etc/passwd", copy);
	if (grp && lookup(rootfs, "group", grp, &gid, NULL) < 0)
		return vs_err(err, 0, "group `%s`: not in the image's /etc/group", grp);
	json_object_set_new(user, "uid", json_integer(uid));
	json_object_set_new(user, "gid", json_integer(gid));
	return 0;
}

static void set_env(json_t *env, const char *kv)
{
	size_t klen = (size_t)(strchr(kv, '=') - kv) + 1, i;
	json_t *v;
	json_array_foreach(env, i, v)
	{
		const char *s = json_string_value(v);
		if (s && strncmp(s, kv, klen) == 0) {
			json_array_set_new(env, i, json_string(kv));
			return;
		}
	}
	json_array_append_new(env, json_string(kv));
}

static void add_bind(json_t *mounts, const char *src, const char *dst, bool ro)
{
	json_array_append_new(mounts, json_pack("{s:s, s:s, s:s, s:[s, s]}", "destination", dst,
						"type", "bind", "source", src, "options", "rbind",
						ro ? "ro" : "rw"));
}

/* The upstream resolver: never the host's systemd-resolved stub, which is 127.0.0.53
 * on the host's loopback and unreachable from the container's network. */
static int write_resolv(const char *path, vs_err_t *err)
{
	cleanup_free char *text = NULL;
	size_t len;
	if (vs_read_file("/etc/resolv.conf", 1 << 16, &text, &len, NULL) == 0 &&
	    strstr(text, "127.0.0.53")) {
		free(text);
		text = NULL;
		if (vs_read_file("/run/systemd/resolve/resolv.conf", 1 << 16, &text, &len, NULL) <
		    0)
			text = NULL;
	}
	if (!text) {
		text = strdup("");
		len = 0;
	}
	return vs_write_file(path, text, len, err);
}

static int etc_files(const char *dir, const char *hostname, json_t *mounts, vs_err_t *err)
{
	cleanup_free char *hosts = NULL, *hn = NULL, *resolv = NULL, *htext = NULL,
			  *hntext = NULL;
	if (asprintf(&hosts, "%s/hosts", dir) < 0 || asprintf(&hn, "%s/hostname", dir) < 0 ||
	    asprintf(&resolv, "%s/resolv.conf", dir) < 0 ||
	    asprintf(&htext, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n127.0.1.1\t%s\n",
		     hostname) < 0 ||
	    asprintf(&hntext, "%s\n", hostname) < 0)
		return vs_err(err, ENOMEM, "etc files");
	if (vs_write_file(hosts, htext, strlen(htext), err) < 0 ||
	    vs_write_file(hn, hntext, strlen(hntext), err) < 0 || write_resolv(resolv, err) < 0)
		return -1;
	add_bind(mounts, hosts, "/etc/hosts", false);
	add_bind(mounts, hn, "/etc/hostname", false);
	add_bind(mounts, resolv, "/etc/resolv.conf", false);
	return 0;
}

/* The image config's conversion (bundle_write_config) plus the command line's. */
static int make_config(const struct vs_globals *g, struct store *s, json_t *image_rec,
		       const struct run_opts *o, char **cmd, const char *dir, const char *rootfs,
		       const char *hostname, vs_err_t *err)
{
	if (bundle_write_config(g, s, image_rec, dir, err) < 0)
		return -1;
	cleanup_free char *path = NULL, *cpath = NULL;
	const char *iid = json_string_value(json_object_get(image_rec, "id"));
	if (asprintf(&path, "%s/config.json", dir) < 0 ||
	    asprintf(&cpath, "%s/blobs/sha256/%s", s->path, iid + 7) < 0)
		return vs_err(err, ENOMEM, "config");
	json_t *spec = vjson_load_file(path, 1 << 20, err);
	json_t *image = spec ? vjson_load_file(cpath, 16 << 20, err) : NULL;
	int rc = -1;
	if (!image)
		goto out;
	json_t *cfg = json_object_get(image, "config");
	json_t *process = json_object_get(spec, "process");
	if (cmd[0]) {
		/* CMD replaces the image's Cmd; its Entrypoint stays (the image spec's rule) */
		json_t *args = json_array();
		size_t i;
		json_t *v;
		json_array_foreach(json_object_get(cfg, "Entrypoint"), i, v)
		    json_array_append(args, v);
		for (char **c = cmd; *c; c++)
			json_array_append_new(args, json_string(*c));
		json_object_set_new(process, "args", args);
	}
	json_t *env = json_object_get(process, "env");
	for (size_t i = 0; i < json_array_size(o->env); i++)
		set_env(env, json_string_value(json_array_get(o->env, i)));
	if (o->workdir)
		json_object_set_new(process, "cwd", json_string(o->workdir));
	const char *user = o->user ? o->user : json_string_value(json_object_get(cfg, "User"));
	if (user && *user && resolve_user(rootfs, user, json_object_get(process, "user"), err) < 0)
		goto out;
	json_object_set_new(json_object_get(spec, "root"), "path", json_string(rootfs));
	json_object_set_new(spec, "hostname", json_string(hostname));
	json_t *mounts = json_object_get(spec, "mounts");
	for (size_t i = 0; i < json_array_size(o->volumes); i++) {
		cleanup_free char *vol = strdup(json_string_value(json_array_get(o->volumes, i)));
		char *dst = strchr(vol, ':');
		*dst++ = 0;
		char *mode = strchr(dst, ':');
		if (mode)
			*mode++ = 0;
		if (access(vol, F_OK) < 0) {
			vs_err(err, errno, "-v: host path %s", vol);
			goto out;
		}
		add_bind(mounts, vol, dst, mode && strcmp(mode, "ro") == 0);
	}
	if (etc_files(dir, hostname, mounts, err) < 0)
		goto out;
	json_t *linux_ = json_object_get(spec, "linux");
	json_t *res = json_object_get(linux_, "resources");
	if (!res)
		json_object_set_new(linux_, "resources", res = json_object());
	if (o->memory)
		json_object_set_new(res, "memory", json_pack("{s:I}", "limit", (json_int_t)o->memory));
	if (o->cpus > 0)
		json_object_set_new(res, "cpu",
				    json_pack("{s:I, s:I}", "quota",
					      (json_int_t)(o->cpus * 100000), "period",
					      (json_int_t)100000));
	if (o->network && strcmp(o->network, "host") == 0) {
		json_t *ns = json_object_get(linux_, "namespaces");
		for (size_t i = json_array_size(ns); i-- > 0;)
			if (strcmp(json_string_value(json_object_get(json_array_get(ns, i), "type")) ?: "",
				   "network") == 0)
				json_array_remove(ns, i);
	}
	cleanup_free char *text = json_dumps(spec, JSON_INDENT(2));
	rc = text ? vs_write_file(path, text, strlen(text), err) : vs_err(err, ENOMEM, "config");
out:
	json_decref(spec);
	json_decref(image);
	return rc;
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

int engine_run(const struct vs_globals *g, const char *store_path, int argc, char **argv,
	       vs_err_t *err)
{
	struct run_opts o = {.env = json_array(), .volumes = json_array()};
	int first, rc = -1;
	json_t *image_rec = NULL, *rec = NULL;
	struct store s = {.fd = -1, .lock = -1};
	cleanup_free char *dir = NULL, *rootfs = NULL, *rw = NULL;
	bool mounted = false;
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
	memcpy(shortid, id, 12);
	shortid[12] = 0;
	const char *name = o.name ? o.name : shortid;
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
	rec = json_pack("{s:s, s:s, s:s, s:O, s:I, s:b, s:b}", "id", id, "name", name, "image",
			ref, "image_id", json_object_get(image_rec, "id"), "created",
			(json_int_t)time(NULL), "detach", o.detach, "rm", o.rm);
	if (engine_write_record(store_path, rec, err) < 0)
		goto out;
	bool copied;
	if (image_mount_root(store_path, ref, rootfs, rw, &copied, err) < 0)
		goto fail;
	mounted = true;
	if (make_config(g, &s, image_rec, &o, argv + first + 1, dir, rootfs, shortid, err) < 0)
		goto fail;
	store_close(&s);
	char *rargv[] = {"run", "--bundle", dir, id, NULL};
	if (o.detach) {
		cleanup_free char *logs = engine_dir(store_path, id, "logs");
		int fd = logs ? open(logs, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : -1;
		if (fd < 0) {
			vs_err(err, errno, "container %s: logs", id);
			goto fail;
		}
		pid_t pid = fork();
		if (pid == 0) {
			/* the runtime's run waits for the container: it outlives us in its own
			 * session, its output in the log */
			setsid();
			/* nor holds what the caller had open (a test's flock on its lock file) */
			close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
			int null = open("/dev/null", O_RDONLY);
			dup2(null, 0);
			_exit(engine_runtime(g, rargv, fd, NULL) < 0 ? 1 : 0);
		}
		close(fd);
		if (pid < 0) {
			vs_err(err, errno, "container %s: fork", id);
			goto fail;
		}
		printf("%s\n", id);
		rc = 0;
		goto out;
	}
	rc = engine_runtime(g, rargv, -1, err);
	if (rc >= 0 && o.rm) {
		if (engine_remove(g, store_path, rec, true, err) < 0)
			rc = -1;
	}
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
	store_close(&s);
	json_decref(image_rec);
	json_decref(rec);
	json_decref(o.env);
	json_decref(o.volumes);
	return rc;
}
