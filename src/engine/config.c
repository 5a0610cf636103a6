/* A container's runtime config: `vessel spec`'s defaults, the image config applied by the
 * image spec's conversion rules (Entrypoint + Cmd, Env, WorkingDir, User by name from the
 * image's own /etc/passwd, StopSignal, ExposedPorts, Volumes), then `run`'s options. The
 * engine converts by itself rather than through image/bundle.c: that one refuses a User
 * by name, which needs the container's root mounted. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/inroot.h"
#include "base/json.h"
#include "base/util.h"
#include "engine/internal.h"
#include "oci/caps.h"
#include "oci/oci.h"

/* rootfs/path, resolved inside rootfs: an image's /etc/passwd that is a link to a host
 * file reads nothing of the host's. Up to 16 MiB. */
static int read_in_root(const char *rootfs, const char *path, char **out, size_t *len)
{
	cleanup_close int rfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	cleanup_close int fd = rfd < 0 ? -1 : vs_openat2_in_root(rfd, path, O_RDONLY, 0);
	if (fd < 0)
		return -1;
	size_t cap = 1 << 16, used = 0;
	char *buf = malloc(cap);
	for (ssize_t r = 1; buf && r != 0;) {
		if (used == cap) {
			char *bigger = cap < (16 << 20) ? realloc(buf, cap *= 2) : NULL;
			if (!bigger)
				break;
			buf = bigger;
		}
		r = read(fd, buf + used, cap - used);
		if (r < 0 && errno != EINTR)
			break;
		if (r > 0)
			used += (size_t)r;
		if (r == 0) {
			*out = buf;
			*len = used;
			return 0;
		}
	}
	free(buf);
	return -1;
}

/* A number, or a name looked up in the container's own /etc/FILE (passwd or group).
 * gid (passwd only) gets the user's primary group. */
static int lookup(const char *rootfs, const char *file, const char *name, unsigned *id,
		  unsigned *gid)
{
	char *end;
	unsigned long v = strtoul(name, &end, 10);
	if (*name >= '0' && *name <= '9' && !*end && v <= UINT32_MAX) {
		*id = (unsigned)v;
		return 0;
	}
	cleanup_free char *path = NULL, *text = NULL;
	size_t len;
	if (asprintf(&path, "/etc/%s", file) < 0 || read_in_root(rootfs, path, &text, &len) < 0)
		return -1;
	uint32_t u, g;
	if (engine_userdb_find(text, len, name, &u, gid ? &g : NULL) != 1)
		return -1;
	*id = u;
	if (gid)
		*gid = g;
	return 0;
}

int engine_check_env(const char *kv, vs_err_t *err)
{
	if (!strchr(kv, '=') || kv[0] == '=')
		return vs_err(err, 0, "-e `%s`: expected KEY=VALUE", kv);
	return 0;
}

int engine_check_workdir(const char *dir, vs_err_t *err)
{
	if (dir[0] != '/')
		return vs_err(err, 0, "-w `%s`: not an absolute path", dir);
	return 0;
}

int engine_user_ids(const char *rootfs, const char *spec, unsigned *uid, unsigned *gid,
		    vs_err_t *err)
{
	cleanup_free char *copy = strdup(spec);
	if (!copy)
		return vs_err(err, ENOMEM, "user");
	char *grp = strchr(copy, ':');
	if (grp)
		*grp++ = 0;
	*uid = *gid = 0;
	if (lookup(rootfs, "passwd", copy, uid, gid) < 0)
		return vs_err(err, 0, "user `%s`: not in the image's /etc/passwd", copy);
	if (grp && lookup(rootfs, "group", grp, gid, NULL) < 0)
		return vs_err(err, 0, "group `%s`: not in the image's /etc/group", grp);
	return 0;
}

static int resolve_user(const char *rootfs, const char *spec, json_t *user, vs_err_t *err)
{
	unsigned uid, gid;
	if (engine_user_ids(rootfs, spec, &uid, &gid, err) < 0)
		return -1;
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

static int etc_files(const char *store, json_t *rec, const char *dir, json_t *mounts, vs_err_t *err)
{
	const char *hostname = json_string_value(json_object_get(rec, "hostname"));
	cleanup_free char *hosts = NULL, *hn = NULL, *resolv = NULL, *hntext = NULL;
	if (asprintf(&hosts, "%s/hosts", dir) < 0 || asprintf(&hn, "%s/hostname", dir) < 0 ||
	    asprintf(&resolv, "%s/resolv.conf", dir) < 0 || asprintf(&hntext, "%s\n", hostname) < 0)
		return vs_err(err, ENOMEM, "etc files");
	if (engine_write_hosts(store, rec, err) < 0 ||
	    vs_write_file(hn, hntext, strlen(hntext), err) < 0 || write_resolv(resolv, err) < 0)
		return -1;
	add_bind(mounts, hosts, "/etc/hosts", false);
	add_bind(mounts, hn, "/etc/hostname", false);
	add_bind(mounts, resolv, "/etc/resolv.conf", false);
	return 0;
}

/* --read-only, as podman's (--read-only-tmpfs, its default): a fresh tmpfs where
 * programs expect to write, unless something is mounted there already. */
static void writable_tmpfs(json_t *mounts)
{
	static const char *const dirs[] = {"/tmp", "/var/tmp", "/run"};
	for (size_t d = 0; d < ARRAY_SIZE(dirs); d++) {
		size_t i;
		json_t *m;
		bool taken = false;
		json_array_foreach(mounts, i, m) taken =
		    taken || strcmp(json_string_value(json_object_get(m, "destination")) ?: "",
				    dirs[d]) == 0;
		if (!taken)
			json_array_append_new(mounts,
					      json_pack("{s:s, s:s, s:s, s:[s, s, s]}",
							"destination", dirs[d], "type", "tmpfs",
							"source", "tmpfs", "options", "nosuid",
							"nodev", d < 2 ? "mode=1777" : "mode=755"));
	}
}

/* The image's Volumes not covered by a -v: an empty directory of the container's own
 * each (what the conversion rules ask for), with the owner and mode of the image's own
 * directory there, as Docker gives it (its content is not copied). */
static int anonymous_volumes(json_t *cfg, const struct engine_opts *o, const char *dir,
			     const char *rootfs, json_t *mounts, vs_err_t *err)
{
	const char *path;
	json_t *v;
	int n = 0;
	json_object_foreach(json_object_get(cfg, "Volumes"), path, v)
	{
		if (path[0] != '/')
			continue;
		bool given = false;
		for (size_t i = 0; i < json_array_size(o->volumes); i++) {
			const char *spec = json_string_value(json_array_get(o->volumes, i));
			const char *dst = strchr(spec, ':') + 1;
			size_t len = strcspn(dst, ":");
			if (strlen(path) == len && strncmp(dst, path, len) == 0)
				given = true;
		}
		if (given)
			continue;
		cleanup_free char *src = NULL;
		if (asprintf(&src, "%s/volumes/%d", dir, n++) < 0)
			return vs_err(err, ENOMEM, "volume %s", path);
		if (vs_mkdir_p(src, 0755, err) < 0)
			return vs_err_wrap(err, "image volume %s", path);
		/* the image's directory there, resolved inside the root: no link of the
		 * image's leads the stat outside it */
		struct stat st;
		cleanup_close int rfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
		cleanup_close int pfd =
		    rfd < 0 ? -1 : vs_openat2_in_root(rfd, path, O_PATH | O_NOFOLLOW, 0);
		if (pfd >= 0 && fstat(pfd, &st) == 0 && S_ISDIR(st.st_mode) &&
		    (chown(src, st.st_uid, st.st_gid) < 0 || chmod(src, st.st_mode & 07777) < 0))
			return vs_err(err, errno, "image volume %s: owner and mode", path);
		add_bind(mounts, src, path, false);
	}
	return 0;
}

/* The process's argv: CMD replaces the image's Cmd; its Entrypoint stays. */
/* Entrypoint + Cmd, by the image spec's rules; --entrypoint replaces the image's and,
 * as in docker and podman, its Cmd too. */
static json_t *process_args(json_t *cfg, char **cmd, const struct engine_opts *o)
{
	json_t *args = json_array(), *v;
	size_t i;
	json_t *entry = o->entrypoint ? o->entrypoint : json_object_get(cfg, "Entrypoint");
	json_array_foreach(entry, i, v) if (json_is_string(v)) json_array_append(args, v);
	if (cmd[0]) {
		for (char **c = cmd; *c; c++)
			json_array_append_new(args, json_string(*c));
	} else if (!o->entrypoint) {
		json_array_foreach(json_object_get(cfg, "Cmd"), i, v) if (json_is_string(v))
		    json_array_append(args, v);
	}
	if (json_array_size(args) == 0)
		json_array_append_new(args, json_string("sh"));
	return args;
}

static void set_network(json_t *linux_, json_t *rec)
{
	const char *net = json_string_value(json_object_get(rec, "network"));
	const char *netns = json_string_value(json_object_get(rec, "netns"));
	json_t *ns = json_object_get(linux_, "namespaces");
	for (size_t i = json_array_size(ns); i-- > 0;) {
		json_t *e = json_array_get(ns, i);
		if (strcmp(json_string_value(json_object_get(e, "type")) ?: "", "network") != 0)
			continue;
		if (strcmp(net, "host") == 0)
			json_array_remove(ns, i);
		else if (netns)
			/* the engine's own netns, attached before the container starts */
			json_object_set_new(e, "path", json_string(netns));
	}
}

/* podman's default_sysctls: with its own network, a container's root group may ping
 * through ICMP datagram sockets without CAP_NET_RAW. --sysctl comes on top; which keys
 * a container may set is the runtime's check. */
static void set_sysctls(json_t *linux_, json_t *rec, const struct engine_opts *o)
{
	json_t *sc = json_object_get(linux_, "sysctl");
	if (!json_is_object(sc))
		json_object_set_new(linux_, "sysctl", sc = json_object());
	if (strcmp(json_string_value(json_object_get(rec, "network")), "host") != 0)
		json_object_set_new(sc, "net.ipv4.ping_group_range", json_string("0 0"));
	json_object_update(sc, o->sysctls);
}

static void set_resources(json_t *linux_, const struct engine_opts *o)
{
	json_t *res = json_object_get(linux_, "resources");
	if (!res)
		json_object_set_new(linux_, "resources", res = json_object());
	if (o->memory)
		json_object_set_new(res, "memory",
				    json_pack("{s:I}", "limit", (json_int_t)o->memory));
	if (o->cpus > 0)
		json_object_set_new(res, "cpu",
				    json_pack("{s:I, s:I}", "quota", (json_int_t)(o->cpus * 100000),
					      "period", (json_int_t)100000));
}

/* A poststart hook: this binary's `container started ID`, the mark run -d waits for. */
static int started_hook(json_t *spec, const char *store, json_t *rec, vs_err_t *err)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return vs_err(err, errno, "readlink /proc/self/exe");
	self[n] = 0;
	json_t *hooks = json_object_get(spec, "hooks");
	if (!hooks)
		json_object_set_new(spec, "hooks", hooks = json_object());
	json_t *post = json_object_get(hooks, "poststart");
	if (!post)
		json_object_set_new(hooks, "poststart", post = json_array());
	/* start's: the one from run goes (the binary may have moved since) */
	for (size_t i = json_array_size(post); i-- > 0;) {
		json_t *args = json_object_get(json_array_get(post, i), "args");
		if (json_array_size(args) == 6 &&
		    strcmp(json_string_value(json_array_get(args, 4)) ?: "", "started") == 0)
			json_array_remove(post, i);
	}
	json_array_append_new(
	    post, json_pack("{s:s, s:[s, s, s, s, s, s], s:i}", "path", self, "args", "vessel",
			    "container", "--store", store, "started",
			    json_string_value(json_object_get(rec, "id")), "timeout", 30));
	return 0;
}

/* ExposedPorts as the conversion rules' annotation: "80/tcp,53/udp". */
static void exposed_ports(json_t *spec, json_t *cfg)
{
	const char *port;
	json_t *v;
	cleanup_free char *list = NULL;
	json_object_foreach(json_object_get(cfg, "ExposedPorts"), port, v)
	{
		char *next;
		if (asprintf(&next, "%s%s%s", list ? list : "", list ? "," : "", port) < 0)
			return;
		free(list);
		list = next;
	}
	if (!list)
		return;
	json_t *ann = json_object_get(spec, "annotations");
	if (!ann)
		json_object_set_new(spec, "annotations", ann = json_object());
	json_object_set_new(ann, "org.opencontainers.image.exposedPorts", json_string(list));
}

/* podman's default_capabilities (containers.conf): what an image's root expects to do to
 * its own files (chown, setuid, ...), without raw sockets, mknod or audit. `vessel spec`'s
 * three (runc's) would make a plain `chown` fail as root. */
static const char *const default_caps[] = {
    "CAP_CHOWN",   "CAP_DAC_OVERRIDE",	   "CAP_FOWNER",     "CAP_FSETID",
    "CAP_KILL",	   "CAP_NET_BIND_SERVICE", "CAP_SETFCAP",    "CAP_SETGID",
    "CAP_SETPCAP", "CAP_SETUID",	   "CAP_SYS_CHROOT",
};

static json_t *cap_names(uint64_t set)
{
	json_t *a = json_array();
	for (int i = 0; i < 64; i++)
		if (set & (1ull << i))
			json_array_append_new(a, json_string(caps_name(i)));
	return a;
}

/* The defaults, less --cap-drop (ALL: all of them), plus --cap-add, as podman: root gets
 * them all; another user only has them in its bounding set, but for the ones it was
 * explicitly given, which it gets as ambient capabilities. */
static void set_capabilities(json_t *process, const struct engine_opts *o)
{
	uint64_t known = 0, set = 0;
	for (int c = 0; c <= caps_last_cap() && c < 64; c++)
		if (caps_name(c))
			known |= 1ull << c;
	for (size_t i = 0; i < ARRAY_SIZE(default_caps); i++)
		set |= 1ull << caps_from_name(default_caps[i]);
	uint64_t added = o->cap_add & known;
	set = (set & ~o->cap_drop) | added;
	bool root =
	    json_integer_value(json_object_get(json_object_get(process, "user"), "uid")) == 0;
	json_object_set_new(process, "capabilities",
			    json_pack("{s:o, s:o, s:o, s:o, s:o}", "bounding", cap_names(set),
				      "effective", cap_names(root ? set : added), "permitted",
				      cap_names(root ? set : added), "inheritable",
				      cap_names(root ? 0 : added), "ambient",
				      cap_names(root ? 0 : added)));
}

static int apply(const struct engine_opts *o, char **cmd, json_t *rec, json_t *spec, json_t *cfg,
		 const char *store, const char *dir, const char *rootfs, vs_err_t *err)
{
	json_t *process = json_object_get(spec, "process");
	json_object_set_new(process, "args", process_args(cfg, cmd, o));
	json_object_set_new(process, "terminal", json_boolean(o->tty));
	json_t *env = json_object_get(process, "env");
	json_t *v;
	size_t i;
	json_array_foreach(json_object_get(cfg, "Env"), i,
			   v) if (json_is_string(v) && strchr(json_string_value(v), '='))
	    set_env(env, json_string_value(v));
	json_array_foreach(o->env, i, v) set_env(env, json_string_value(v));
	const char *wd =
	    o->workdir ? o->workdir : json_string_value(json_object_get(cfg, "WorkingDir"));
	json_object_set_new(process, "cwd", json_string(wd && *wd == '/' ? wd : "/"));
	const char *user = o->user ? o->user : json_string_value(json_object_get(cfg, "User"));
	if (user && *user && resolve_user(rootfs, user, json_object_get(process, "user"), err) < 0)
		return -1;
	set_capabilities(process, o);
	const char *sig = json_string_value(json_object_get(cfg, "StopSignal"));
	json_object_set_new(rec, "stop_signal", json_string(sig && *sig ? sig : "SIGTERM"));

	json_t *root = json_object_get(spec, "root");
	json_object_set_new(root, "path", json_string(rootfs));
	json_object_set_new(root, "readonly", json_boolean(o->read_only));
	json_object_set(spec, "hostname", json_object_get(rec, "hostname"));
	json_t *mounts = json_object_get(spec, "mounts");
	for (i = 0; i < json_array_size(o->volumes); i++) {
		cleanup_free char *vol = strdup(json_string_value(json_array_get(o->volumes, i)));
		char *dst = strchr(vol, ':');
		*dst++ = 0;
		char *mode = strchr(dst, ':');
		if (mode)
			*mode++ = 0;
		if (access(vol, F_OK) < 0)
			return vs_err(err, errno, "-v: host path %s", vol);
		add_bind(mounts, vol, dst, mode && strcmp(mode, "ro") == 0);
	}
	if (o->read_only)
		writable_tmpfs(mounts);
	if (anonymous_volumes(cfg, o, dir, rootfs, mounts, err) < 0 ||
	    etc_files(store, rec, dir, mounts, err) < 0)
		return -1;
	json_t *linux_ = json_object_get(spec, "linux");
	set_resources(linux_, o);
	set_network(linux_, rec);
	set_sysctls(linux_, rec, o);
	exposed_ports(spec, cfg);
	/* only run -d waits for the mark (start renews the hook): a foreground run does not
	 * pay the hook's exec while its container is starting */
	return o->detach ? started_hook(spec, store, rec, err) : 0;
}

int engine_make_config(const struct vs_globals *g, struct store *s, json_t *image_rec,
		       const struct engine_opts *o, char **cmd, json_t *rec, const char *dir,
		       const char *rootfs, vs_err_t *err)
{
	char *spec_argv[] = {"spec", "--bundle", (char *)dir, NULL};
	optind = 0;
	if (oci_cmd_spec(g, 3, spec_argv, err) < 0)
		return -1;
	cleanup_free char *path = NULL, *cpath = NULL;
	const char *iid = json_string_value(json_object_get(image_rec, "id"));
	if (!iid || strncmp(iid, "sha256:", 7) != 0)
		return vs_err(err, 0, "image record without a sha256 id");
	if (asprintf(&path, "%s/config.json", dir) < 0 ||
	    asprintf(&cpath, "%s/blobs/sha256/%s", s->path, iid + 7) < 0)
		return vs_err(err, ENOMEM, "config");
	json_t *spec = vjson_load_file(path, 1 << 20, err);
	json_t *image = spec ? vjson_load_file(cpath, 16 << 20, err) : NULL;
	int rc = -1;
	if (image && apply(o, cmd, rec, spec, json_object_get(image, "config"), s->path, dir,
			   rootfs, err) == 0) {
		cleanup_free char *text = json_dumps(spec, JSON_INDENT(2));
		rc = text ? vs_write_file(path, text, strlen(text), err)
			  : vs_err(err, ENOMEM, "config");
	}
	json_decref(spec);
	json_decref(image);
	return rc;
}

int engine_renew_hook(const char *store, json_t *rec, const char *dir, vs_err_t *err)
{
	cleanup_free char *path = NULL;
	if (asprintf(&path, "%s/config.json", dir) < 0)
		return vs_err(err, ENOMEM, "config");
	json_t *spec = vjson_load_file(path, 1 << 20, err);
	if (!spec)
		return -1;
	int rc = started_hook(spec, store, rec, err);
	cleanup_free char *text = rc == 0 ? json_dumps(spec, JSON_INDENT(2)) : NULL;
	if (rc == 0)
		rc = text ? vs_write_file(path, text, strlen(text), err)
			  : vs_err(err, ENOMEM, "config");
	json_decref(spec);
	return rc;
}
