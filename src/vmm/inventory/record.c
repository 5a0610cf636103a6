/* This VMM's record in the host's inventory of VMs, and the reading of everyone's. */
#include "vmm/inventory/inventory.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "base/log.h"
#include "base/proc.h"
#include "base/util.h"

static struct {
	char *dir; /* set, or the default once asked */
	bool dir_set;
	struct overcommit policy;
	bool policy_set;
	struct machine_max max; /* --max-machine */
	bool counted_on_host;	/* --counted-on-host: a jailed VMM, the jailer made its record */
	const char *id, *api_sock;
	struct vm_record self;
	bool recorded; /* our file exists, in dir_fd */
	int dir_fd;    /* the state directory, held: a jailer writes to it after its pivot */
} inv;

void inventory_set_dir(const char *dir)
{
	free(inv.dir);
	inv.dir = dir ? strdup(dir) : NULL;
	inv.dir_set = dir != NULL;
}

const char *inventory_dir(void)
{
	if (inv.dir || inv.dir_set)
		return inv.dir;
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	if (geteuid() == 0) {
		inv.dir = strdup("/run/vessel-vm");
	} else if (xdg && *xdg) {
		if (asprintf(&inv.dir, "%s/vessel-vm", xdg) < 0)
			inv.dir = NULL;
	}
	inv.dir_set = true;
	return inv.dir;
}

int inventory_setup(int *argc, char **argv, vs_err_t *err)
{
	if (!inv.policy_set) {
		overcommit_defaults(&inv.policy);
		inv.policy_set = true;
	}
	int out = 0, i = 0;
	for (; i < *argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--overcommit") == 0) {
			if (i + 1 >= *argc)
				return vs_err(err, 0, "--overcommit needs cpu=RATIO,mem=RATIO or off");
			if (overcommit_parse(argv[++i], &inv.policy, err) < 0)
				return -1;
		} else if (strcmp(argv[i], "--counted-on-host") == 0) {
			inv.counted_on_host = true;
		} else if (strcmp(argv[i], "--max-machine") == 0) {
			if (i + 1 >= *argc)
				return vs_err(err, 0, "--max-machine needs VCPUS,SIZE (e.g. 2,512M)");
			if (machine_max_parse(argv[++i], &inv.max, err) < 0)
				return -1;
		} else {
			argv[out++] = argv[i];
		}
	}
	for (; i < *argc; i++)
		argv[out++] = argv[i];
	argv[out] = NULL;
	*argc = out;
	return 0;
}

const struct machine_max *inventory_max_machine(void)
{
	return &inv.max;
}

void inventory_identify(const char *id, const char *api_sock)
{
	inv.id = id;
	inv.api_sock = api_sock;
}

/* mkdir -p, 0700: the records name sockets only root (or their user) should reach;
 * mkdirat, which the main thread's seccomp list allows (mkdir is not in it) */
static int make_dir(const char *dir, vs_err_t *err)
{
	cleanup_free char *p = strdup(dir);
	if (!p)
		return vs_err(err, ENOMEM, "%s", dir);
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s)
			continue;
		char c = *s;
		*s = '\0';
		if (mkdirat(AT_FDCWD, p, 0700) < 0 && errno != EEXIST)
			return vs_err(err, errno, "make `%s`", p);
		*s = c;
		if (!c)
			return 0;
	}
}

/* The inventory's lock, held while counting and writing (or pruning). */
static int lock_dir(const char *dir, vs_err_t *err)
{
	if (make_dir(dir, err) < 0)
		return -1;
	cleanup_free char *path = NULL;
	if (asprintf(&path, "%s/.lock", dir) < 0)
		return vs_err(err, ENOMEM, "%s", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return vs_err(err, errno, "open `%s`", path);
	if (flock(fd, LOCK_EX) < 0) {
		int e = errno;
		close(fd);
		return vs_err(err, e, "lock `%s`", path);
	}
	return fd;
}

static int parse_record(json_t *j, struct vm_record *r)
{
	json_t *pid = json_object_get(j, "pid"), *st = json_object_get(j, "start_time"),
	       *cpus = json_object_get(j, "vcpus"), *mem = json_object_get(j, "memory"),
	       *bal = json_object_get(j, "balloon"), *id = json_object_get(j, "id"),
	       *sock = json_object_get(j, "api_sock");
	if (!json_is_integer(pid) || !json_is_integer(st) || !json_is_integer(cpus) ||
	    !json_is_integer(mem) || json_integer_value(pid) <= 0 ||
	    json_integer_value(cpus) < 0 || json_integer_value(cpus) > 1 << 20 ||
	    json_integer_value(mem) < 0 || (id && !json_is_string(id)) ||
	    (sock && !json_is_string(sock)) || (bal && !json_is_integer(bal)))
		return -1;
	*r = (struct vm_record){
	    .pid = (pid_t)json_integer_value(pid),
	    .start_time = (uint64_t)json_integer_value(st),
	    .vcpus = (unsigned)json_integer_value(cpus),
	    .memory = (uint64_t)json_integer_value(mem),
	    .balloon = bal && json_integer_value(bal) > 0 ? (uint64_t)json_integer_value(bal) : 0,
	};
	if (id)
		snprintf(r->id, sizeof(r->id), "%s", json_string_value(id));
	if (sock && !(r->api_sock = strdup(json_string_value(sock))))
		return -1;
	return 0;
}

void inventory_free(struct vm_record *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(r[i].api_sock);
	free(r);
}

/* The live records of dir (the lock held); dead VMMs' records are removed. */
static int read_locked(const char *dir, struct vm_record **out, size_t *n, vs_err_t *err)
{
	*out = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return vs_err(err, errno, "read `%s`", dir);
	struct vm_record *v = NULL;
	size_t len = 0, cap = 0;
	int rc = 0;
	for (struct dirent *e; (e = readdir(d));) {
		size_t l = strlen(e->d_name);
		if (e->d_name[0] == '.' || l < 6 || strcmp(e->d_name + l - 5, ".json") != 0)
			continue;
		int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* removed meanwhile */
		json_error_t je;
		json_t *j = json_loadfd(fd, 0, &je);
		close(fd);
		struct vm_record r;
		bool ok = j && parse_record(j, &r) == 0;
		json_decref(j);
		if (!ok) {
			vs_warn("VM inventory: `%s/%s` is not a VM record: left alone", dir,
				e->d_name);
			continue;
		}
		if (r.pid == getpid() || !proc_alive(r.pid, r.start_time)) {
			/* ours is rewritten by the caller; a dead VMM's is gone with it */
			if (r.pid != getpid())
				unlinkat(dirfd(d), e->d_name, 0);
			free(r.api_sock);
			continue;
		}
		if (len == cap) {
			size_t nc = cap ? 2 * cap : 8;
			struct vm_record *nv = realloc(v, nc * sizeof(*v));
			if (!nv) {
				free(r.api_sock);
				rc = vs_err(err, ENOMEM, "VM inventory");
				break;
			}
			v = nv;
			cap = nc;
		}
		v[len++] = r;
	}
	closedir(d);
	if (rc < 0) {
		inventory_free(v, len);
		return -1;
	}
	*out = v;
	*n = len;
	return 0;
}

int inventory_read(struct vm_record **out, size_t *n, vs_err_t *err)
{
	*out = NULL;
	*n = 0;
	const char *dir = inventory_dir();
	if (!dir)
		return 0;
	struct stat st;
	if (stat(dir, &st) < 0 && errno == ENOENT)
		return 0; /* no VM ever ran here */
	int lock = lock_dir(dir, err);
	if (lock < 0)
		return -1;
	int rc = read_locked(dir, out, n, err);
	close(lock);
	return rc;
}

/* Writes this process's record into the directory dir_fd (tmp + rename: a reader sees the
 * old one or the new). */
static int write_self(int dir_fd, vs_err_t *err)
{
	const struct vm_record *s = &inv.self;
	json_t *j = json_pack("{s:I, s:I, s:s, s:I, s:I, s:I}", "pid", (json_int_t)s->pid,
			      "start_time", (json_int_t)s->start_time, "id", s->id, "vcpus",
			      (json_int_t)s->vcpus, "memory", (json_int_t)s->memory, "balloon",
			      (json_int_t)s->balloon);
	if (!j)
		return vs_err(err, ENOMEM, "VM record");
	if (s->api_sock)
		json_object_set_new(j, "api_sock", json_string(s->api_sock));
	char tmp[64], path[64];
	snprintf(tmp, sizeof(tmp), "%d.json.tmp", (int)s->pid);
	snprintf(path, sizeof(path), "%d.json", (int)s->pid);
	errno = 0;
	int fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int rc = fd < 0 ? -1 : json_dumpfd(j, fd, JSON_COMPACT);
	int e = errno ? errno : EIO;
	json_decref(j);
	if (fd >= 0 && close(fd) < 0 && rc == 0) {
		rc = -1;
		e = errno;
	}
	if (rc < 0) {
		unlinkat(dir_fd, tmp, 0);
		return vs_err(err, e, "write `%s/%s`", inventory_dir(), tmp);
	}
	if (renameat(dir_fd, tmp, dir_fd, path) < 0) {
		e = errno;
		unlinkat(dir_fd, tmp, 0);
		return vs_err(err, e, "rename `%s/%s`", inventory_dir(), tmp);
	}
	inv.recorded = true;
	return 0;
}

static void host_capacity(struct host_capacity *h)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	struct sysinfo si;
	h->cpus = n > 0 ? (unsigned)n : 1;
	h->memory = sysinfo(&si) == 0 ? (uint64_t)si.totalram * si.mem_unit : 0;
}

int inventory_admit(unsigned vcpus, uint64_t memory, vs_err_t *err)
{
	if (!inv.policy_set) {
		overcommit_defaults(&inv.policy);
		inv.policy_set = true;
	}
	inventory_leave(); /* a VMM builds one VM at a time: a retry replaces the record */
	/* a jailed VMM's ceiling is what the jailer counted on the host: a larger VM (an API's
	 * machine-config, given after the exec) would be more than anyone counted */
	if (machine_max_check(&inv.max, vcpus, memory, err) < 0)
		return -1;
	if (inv.counted_on_host)
		return 0; /* the jail holds no state directory to look for */
	const char *dir = inventory_dir();
	vs_err_t e = NULL;
	int lock = dir ? lock_dir(dir, &e) : -1;
	if (lock < 0) {
		/* a jailed VMM sees no host directory, and its jail is its host's policy */
		if (!inv.policy.off) {
			if (dir)
				vs_warn("VM inventory: %s: this VM is neither counted nor checked "
					"against --overcommit",
					e->msg);
			else
				vs_warn("VM inventory: no state directory (not root and no "
					"XDG_RUNTIME_DIR): this VM is neither counted nor checked "
					"against --overcommit");
		}
		vs_err_free(&e);
		return 0;
	}
	struct vm_record *running;
	size_t n;
	int rc = read_locked(dir, &running, &n, err);
	if (rc == 0) {
		struct host_capacity host;
		host_capacity(&host);
		rc = overcommit_check(&inv.policy, &host, running, n, vcpus, memory, err);
		inventory_free(running, n);
	}
	if (rc == 0) {
		inv.self = (struct vm_record){.pid = getpid(),
					      .start_time = proc_start_time(getpid()),
					      .vcpus = vcpus,
					      .memory = memory,
					      .api_sock = (char *)inv.api_sock};
		snprintf(inv.self.id, sizeof(inv.self.id), "%s", inv.id ? inv.id : "");
		inv.dir_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		rc = inv.dir_fd < 0 ? vs_err(err, errno, "open `%s`", dir)
				    : write_self(inv.dir_fd, err);
		if (rc < 0 && inv.dir_fd >= 0)
			close(inv.dir_fd);
	}
	close(lock);
	return rc;
}

void inventory_set_balloon(uint64_t bytes)
{
	if (!inv.recorded)
		return;
	inv.self.balloon = bytes;
	vs_err_t e = NULL;
	if (write_self(inv.dir_fd, &e) < 0) {
		vs_warn("VM inventory: %s", e->msg);
		vs_err_free(&e);
	}
}

void inventory_leave(void)
{
	if (!inv.recorded)
		return;
	char path[64];
	snprintf(path, sizeof(path), "%d.json", (int)inv.self.pid);
	unlinkat(inv.dir_fd, path, 0);
	close(inv.dir_fd);
	inv.recorded = false;
}

int inventory_move(int proc_fd, pid_t pid, vs_err_t *err)
{
	if (!inv.recorded)
		return 0;
	/* under the lock: no count sees the VM twice or not at all */
	int lock = openat(inv.dir_fd, ".lock", O_RDWR | O_CLOEXEC);
	if (lock < 0 || flock(lock, LOCK_EX) < 0) {
		int e = errno;
		if (lock >= 0)
			close(lock);
		return vs_err(err, e, "lock `%s/.lock`", inventory_dir());
	}
	pid_t old = inv.self.pid;
	inv.self.pid = pid;
	inv.self.start_time = proc_start_time_at(proc_fd, pid);
	int rc = write_self(inv.dir_fd, err);
	if (rc == 0) {
		char path[64];
		snprintf(path, sizeof(path), "%d.json", (int)old);
		unlinkat(inv.dir_fd, path, 0);
	} else {
		inv.self.pid = old;
	}
	close(lock);
	return rc;
}
