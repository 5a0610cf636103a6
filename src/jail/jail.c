/* The jailer's steps, in Firecracker's order; everything made before the exec is undone
 * when a later step fails (the mounts need no undoing: they live in the jail's own mount
 * namespace and go with it). */
#include "jail/jail.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "jail/args.h"
#include "sandbox/sandbox.h"
#include "vmm/vmm.h"

/* The only device nodes in a jail; made with the host's numbers. */
static const char *const jail_devices[] = {"/dev/kvm", "/dev/net/tun", "/dev/userfaultfd"};
#define NDEV (sizeof(jail_devices) / sizeof(jail_devices[0]))

struct jail {
	struct jail_args a;
	const char *exec_name;
	char *root;	    /* <base>/<exec-name>/<id>/root */
	int made_parent_fd; /* the directory holding the first directory we made, or -1 */
	char *made_name;    /* that directory's name: undo removes its tree */
	char *exec_copy;    /* the binary put into the root: undo removes it */
	struct cgroup *cg;
	bool cg_entered, pivoted;
	char **exec_argv; /* VMM-ARGS as the inventory's check left them; NULL: as given */
	int netns_fd, null_fd;
	int proc_fd;	    /* the host's /proc, for the record of a forked VMM (jail_fork) */
	int exec_report_fd; /* a forked child's end of jail_fork's pipe, or -1 */
	dev_t dev[NDEV];
	bool has_dev[NDEV];
};

static void jail_undo(struct jail *j)
{
	/* after the pivot the record is out of reach; it goes stale with this process */
	if (j->exec_argv && !j->pivoted)
		vmm_jail_leave();
	if (j->made_parent_fd >= 0)
		vs_remove_tree(j->made_parent_fd, j->made_name, NULL);
	else if (j->exec_copy && !j->pivoted)
		unlink(j->exec_copy);
	if (j->cg && !j->cg_entered) {
		cleanup_err vs_err_t e = NULL;
		if (cgroup_destroy(j->cg, &e) < 0)
			vs_warn("jail: %s", e->msg);
	}
}

static void jail_free(struct jail *j)
{
	if (j->made_parent_fd >= 0)
		close(j->made_parent_fd);
	if (j->netns_fd >= 0)
		close(j->netns_fd);
	if (j->null_fd >= 0)
		close(j->null_fd);
	if (j->proc_fd >= 0)
		close(j->proc_fd);
	cgroup_free(j->cg);
	free(j->made_name);
	free(j->exec_copy);
	free(j->root);
	free(j->exec_argv);
	jail_args_free(&j->a);
}

/* What must hold before anything is made: the binary, the netns, the cgroup version. */
static int jail_check(struct jail *j, vs_err_t *err)
{
	struct stat st;
	if (stat(j->a.exec_file, &st) < 0)
		return vs_err(err, errno, "--exec-file %s", j->a.exec_file);
	if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111))
		return vs_err(err, 0, "--exec-file %s: not an executable file", j->a.exec_file);
	j->exec_name =
	    strrchr(j->a.exec_file, '/') ? strrchr(j->a.exec_file, '/') + 1 : j->a.exec_file;
	if (asprintf(&j->root, "%s/%s/%s/root", j->a.base, j->exec_name, j->a.id) < 0)
		return vs_err(err, ENOMEM, "jail root");
	if (j->a.netns) {
		j->netns_fd = open(j->a.netns, O_RDONLY | O_CLOEXEC);
		if (j->netns_fd < 0)
			return vs_err(err, errno, "--netns %s", j->a.netns);
		int type = ioctl(j->netns_fd, NS_GET_NSTYPE);
		if (type != CLONE_NEWNET)
			return vs_err(err, type < 0 ? errno : 0,
				      "--netns %s: not a network namespace", j->a.netns);
	}
	if ((j->a.ncgroup || j->a.parent_cgroup) && !cgroup_version_available(j->a.cgroup_version))
		return vs_err(err, 0, "--cgroup-version %d: this host mounts no such hierarchy",
			      j->a.cgroup_version);
	for (size_t i = 0; i < NDEV; i++) {
		if (stat(jail_devices[i], &st) == 0 && S_ISCHR(st.st_mode)) {
			j->dev[i] = st.st_rdev;
			j->has_dev[i] = true;
		}
	}
	return 0;
}

/* mkdir -p of <base>/<exec-name>/<id>/root, remembering the first directory made so undo
 * removes exactly what we made. An existing root is used as it is, as Firecracker's
 * jailer does: the orchestrator may have linked the guest's kernel and disks into it. */
static int jail_make_root(struct jail *j, vs_err_t *err)
{
	cleanup_free char *path = strdup(j->root);
	if (!path)
		return vs_err(err, ENOMEM, "jail root");
	for (char *p = path + 1;; p++) {
		bool last = *p == '\0';
		if (*p != '/' && !last)
			continue;
		*p = '\0';
		if (mkdir(path, 0755) == 0) {
			if (j->made_parent_fd < 0) {
				char *slash = strrchr(path, '/');
				*slash = '\0';
				j->made_parent_fd = open(slash == path ? "/" : path,
							 O_PATH | O_DIRECTORY | O_CLOEXEC);
				j->made_name = strdup(slash + 1);
				*slash = '/';
				if (j->made_parent_fd < 0 || !j->made_name)
					return vs_err(err, errno ? errno : ENOMEM, "open %s", path);
			}
		} else if (errno != EEXIST) {
			return vs_err(err, errno, "mkdir %s", path);
		}
		if (last)
			break;
		*p = '/';
	}
	return 0;
}

/* The VMM binary into the root: a hard link when on the same filesystem (nothing
 * copied), else a copy. Never chowned: a link shares the host binary's inode. */
static int jail_copy_exec(struct jail *j, vs_err_t *err)
{
	cleanup_free char *dst = NULL;
	if (asprintf(&dst, "%s/%s", j->root, j->exec_name) < 0)
		return vs_err(err, ENOMEM, "jail exec");
	/* a binary left by an earlier run is replaced, as Firecracker's copy does */
	if (unlink(dst) < 0 && errno != ENOENT)
		return vs_err(err, errno, "replace %s", dst);
	j->exec_copy = strdup(dst);
	if (!j->exec_copy)
		return vs_err(err, ENOMEM, "jail exec");
	if (link(j->a.exec_file, dst) == 0)
		return 0;
	if (errno != EXDEV && errno != EPERM)
		return vs_err(err, errno, "link %s to %s", j->a.exec_file, dst);
	cleanup_close int in = open(j->a.exec_file, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return vs_err(err, errno, "open %s", j->a.exec_file);
	cleanup_close int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
	if (out < 0)
		return vs_err(err, errno, "create %s", dst);
	/* copy_file_range first (reflinks where the filesystem can); kernels that refuse it
	 * across filesystems (EXDEV, EINVAL on 9p) get a plain read/write loop */
	bool plain = false;
	char buf[1 << 16];
	for (;;) {
		ssize_t n;
		if (!plain) {
			n = copy_file_range(in, NULL, out, NULL, 1 << 20, 0);
			if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
				      errno == EOPNOTSUPP)) {
				plain = true;
				continue;
			}
		} else {
			n = read(in, buf, sizeof(buf));
			for (ssize_t off = 0; n > 0 && off < n;) {
				ssize_t w = write(out, buf + off, (size_t)(n - off));
				if (w < 0)
					return vs_err(err, errno, "copy %s to %s", j->a.exec_file,
						      dst);
				off += w;
			}
		}
		if (n == 0)
			return 0;
		if (n < 0)
			return vs_err(err, errno, "copy %s to %s", j->a.exec_file, dst);
	}
}

/* The host's VM inventory (docs/jail.md): a VMM in the jail can't reach it, so the VM it
 * will run is checked against the overcommit policy and recorded here, as this process,
 * whose pid and start time the VMM keeps (it is exec'd in place). Before anything is made,
 * so a refusal leaves nothing; a config file is read from an existing root (the
 * orchestrator's files), resolved inside it. */
static int jail_admit(struct jail *j, vs_err_t *err)
{
	cleanup_close int root_fd = open(j->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0 && errno != ENOENT)
		return vs_err(err, errno, "open %s", j->root);
	if (vmm_jail_admit(j->a.vmm_argc, j->a.vmm_argv, root_fd, j->a.id, &j->exec_argv, err) < 0)
		return -1;
	/* a forked VMM's record is moved to its pid after the pivot: /proc kept for its
	 * start time */
	if (j->exec_argv && (j->a.new_pid_ns || j->a.daemonize)) {
		j->proc_fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (j->proc_fd < 0) {
			vmm_jail_leave();
			return vs_err(err, errno, "open /proc");
		}
	}
	return 0;
}

static int jail_rlimits(struct jail *j, vs_err_t *err)
{
	struct rlimit nofile = {j->a.nofile, j->a.nofile};
	if (setrlimit(RLIMIT_NOFILE, &nofile) < 0)
		return vs_err(err, errno, "--resource-limit no-file=%llu",
			      (unsigned long long)j->a.nofile);
	if (j->a.has_fsize) {
		struct rlimit fsize = {j->a.fsize, j->a.fsize};
		if (setrlimit(RLIMIT_FSIZE, &fsize) < 0)
			return vs_err(err, errno, "--resource-limit fsize=%llu",
				      (unsigned long long)j->a.fsize);
	}
	return 0;
}

/* <parent-cgroup or exec-name>/<id> in each hierarchy, as Firecracker's jailer names it;
 * the limits are written before the process joins. */
static int jail_cgroup(struct jail *j, vs_err_t *err)
{
	if (!j->a.ncgroup && !j->a.parent_cgroup)
		return 0;
	cleanup_free char *path = NULL;
	if (asprintf(&path, "/%s/%s", j->a.parent_cgroup ? j->a.parent_cgroup : j->exec_name,
		     j->a.id) < 0)
		return vs_err(err, ENOMEM, "jail cgroup");
	if (cgroup_create(path, j->a.id, &j->cg, err) < 0)
		return vs_err_wrap(err, "jail cgroup %s", path);
	for (size_t i = 0; i < j->a.ncgroup; i++)
		if (cgroup_write_file(j->cg, j->a.cgroup_version, j->a.cgroup[i].file,
				      j->a.cgroup[i].value, err) < 0)
			return vs_err_wrap(err, "--cgroup %s=%s", j->a.cgroup[i].file,
					   j->a.cgroup[i].value);
	if (cgroup_enter(j->cg, getpid(), err) < 0)
		return -1;
	j->cg_entered = true;
	return 0;
}

/* A mount namespace whose / is the jail's root; the host's tree is detached. */
static int jail_pivot(struct jail *j, vs_err_t *err)
{
	if (unshare(CLONE_NEWNS) < 0)
		return vs_err(err, errno, "unshare mount namespace");
	/* nothing we mount from here on may reach the host's namespace */
	if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		return vs_err(err, errno, "make / a slave mount");
	if (mount(j->root, j->root, NULL, MS_BIND | MS_REC, NULL) < 0)
		return vs_err(err, errno, "bind %s", j->root);
	if (chdir(j->root) < 0)
		return vs_err(err, errno, "chdir %s", j->root);
	if (mkdir("old_root", 0700) < 0 && errno != EEXIST)
		return vs_err(err, errno, "mkdir %s/old_root", j->root);
	if (syscall(SYS_pivot_root, ".", "old_root") < 0)
		return vs_err(err, errno, "pivot_root into %s", j->root);
	j->pivoted = true;
	if (chdir("/") < 0)
		return vs_err(err, errno, "chdir / in the jail");
	if (umount2("/old_root", MNT_DETACH) < 0)
		return vs_err(err, errno, "detach the host's tree");
	if (rmdir("/old_root") < 0)
		return vs_err(err, errno, "rmdir /old_root in the jail");
	return 0;
}

static int jail_devices_make(struct jail *j, vs_err_t *err)
{
	if ((mkdir("/dev", 0755) < 0 && errno != EEXIST) ||
	    (mkdir("/dev/net", 0755) < 0 && errno != EEXIST))
		return vs_err(err, errno, "mkdir /dev in the jail");
	for (size_t i = 0; i < NDEV; i++) {
		if (!j->has_dev[i])
			continue;
		/* a node left in a reused root may not be the host's device any more */
		if (unlink(jail_devices[i]) < 0 && errno != ENOENT)
			return vs_err(err, errno, "replace %s in the jail", jail_devices[i]);
		if (mknod(jail_devices[i], S_IFCHR | 0600, j->dev[i]) < 0)
			return vs_err(err, errno, "mknod %s (%u:%u) in the jail", jail_devices[i],
				      major(j->dev[i]), minor(j->dev[i]));
		if (chown(jail_devices[i], j->a.uid, j->a.gid) < 0)
			return vs_err(err, errno, "chown %s in the jail", jail_devices[i]);
	}
	/* the VMM makes its API socket and the like in its root */
	if (chown("/", j->a.uid, j->a.gid) < 0)
		return vs_err(err, errno, "chown the jail's root");
	return 0;
}

/* With --new-pid-ns or --daemonize the jailer forks: the child goes on to the exec (pid 1
 * of a new pid namespace with --new-pid-ns), the parent writes its pid to
 * /<exec-name>.pid in the jail and exits 0, as Firecracker's jailer does. Unlike
 * Firecracker's, the parent first waits for the exec (a close-on-exec pipe): a 0 exit then
 * means the VMM runs with its ids dropped, and a failing exec is reported by the parent,
 * since a daemon's stderr is /dev/null. Returns the child's pid in the parent, 0 in the
 * child or without a fork. */
static pid_t jail_fork(struct jail *j, int *report_fd, vs_err_t *err)
{
	*report_fd = -1;
	if (!j->a.new_pid_ns && !j->a.daemonize)
		return 0;
	if (j->a.new_pid_ns && unshare(CLONE_NEWPID) < 0)
		return vs_err(err, errno, "unshare pid namespace");
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return vs_err(err, errno, "pipe");
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return vs_err(err, e, "fork");
	}
	if (pid == 0) {
		close(p[0]);
		j->exec_report_fd = p[1];
		if (j->a.daemonize) {
			if (setsid() < 0)
				return vs_err(err, errno, "setsid");
			for (int fd = 0; fd <= 2; fd++)
				dup2(j->null_fd, fd);
		}
		return 0;
	}
	close(p[1]);
	*report_fd = p[0];
	return pid;
}

/* The parent's side of jail_fork: returns only when the child failed before its exec. */
static int jail_wait_exec(struct jail *j, pid_t pid, int report_fd, vs_err_t *err)
{
	char msg[1024];
	size_t n = 0;
	ssize_t r;
	while (n < sizeof(msg) - 1 && ((r = read(report_fd, msg + n, sizeof(msg) - 1 - n)) > 0 ||
				       (r < 0 && errno == EINTR)))
		if (r > 0)
			n += (size_t)r;
	close(report_fd);
	if (n > 0) {
		msg[n] = '\0';
		waitpid(pid, NULL, 0);
		return vs_err(err, 0, "%s", msg);
	}
	cleanup_free char *pidfile = NULL;
	if (asprintf(&pidfile, "/%s.pid", j->exec_name) < 0)
		return vs_err(err, ENOMEM, "pid file");
	FILE *f = fopen(pidfile, "we");
	if (!f || fprintf(f, "%d\n", pid) < 0 || fclose(f) != 0)
		return vs_err(err, errno, "write %s in the jail", pidfile);
	if (j->proc_fd >= 0) {
		/* the VM runs on: a record we can't move only leaves it uncounted */
		cleanup_err vs_err_t e = NULL;
		if (vmm_jail_moved(j->proc_fd, pid, &e) < 0)
			vs_warn("jail: VM inventory: %s", e->msg);
	}
	/* nothing is left to do here, and after unshare(CLONE_NEWPID) exit-time work that
	 * forks (a sanitizer's leak check) cannot: leave at once */
	fflush(NULL);
	_exit(0);
}

/* A forked child's failure goes to the parent, which reports it (its stderr may be
 * /dev/null); the child leaves at once, as the parent does after a fork. */
static void jail_child_failed(struct jail *j, vs_err_t err)
{
	if (j->exec_report_fd < 0)
		return;
	const char *m = err && err->msg ? err->msg : "the jailer's child failed";
	if (write(j->exec_report_fd, m, strlen(m)) < 0) {
		/* the parent is gone: nobody is left to tell */
	}
	_exit(1);
}

static int jail_exec(struct jail *j, vs_err_t *err)
{
	if (setgroups(0, NULL) < 0 || setresgid(j->a.gid, j->a.gid, j->a.gid) < 0 ||
	    setresuid(j->a.uid, j->a.uid, j->a.uid) < 0)
		return vs_err(err, errno, "drop to uid %u gid %u", j->a.uid, j->a.gid);
	/* + the name, NULL, and the inventory's `--counted-on-host --max-machine N,SIZE` */
	char **argv = calloc((size_t)j->a.vmm_argc + 6, sizeof(*argv));
	cleanup_free char *path = NULL;
	if (!argv || asprintf(&path, "/%s", j->exec_name) < 0)
		return vs_err(err, ENOMEM, "exec");
	argv[0] = (char *)j->exec_name;
	if (j->exec_argv)
		for (int i = 0; j->exec_argv[i]; i++)
			argv[i + 1] = j->exec_argv[i];
	else
		for (int i = 0; i < j->a.vmm_argc; i++)
			argv[i + 1] = j->a.vmm_argv[i];
	char *envp[] = {NULL};
	execve(path, argv, envp);
	int e = errno;
	free(argv);
	return vs_err(err, e, "exec %s in the jail %s", path, j->root);
}

int jail_main(const struct vs_globals *g, int argc, char **argv, vs_err_t *err)
{
	(void)g;
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf("%s\n", jail_usage);
			return 0;
		}
	struct jail j = {.made_parent_fd = -1,
			 .netns_fd = -1,
			 .null_fd = -1,
			 .proc_fd = -1,
			 .exec_report_fd = -1};
	/* nothing of the caller's reaches the VMM: no fds but stdio, no environment */
	if (syscall(SYS_close_range, 3, ~0U, 0) < 0)
		return vs_err(err, errno, "close inherited fds");
	clearenv();
	if (jail_args_parse(&j.a, argc, argv, err) < 0) {
		jail_free(&j);
		return -1;
	}
	int r = -1;
	if (jail_check(&j, err) < 0 || jail_admit(&j, err) < 0)
		goto out;
	j.null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (j.null_fd < 0) {
		vs_err(err, errno, "open /dev/null");
		goto out;
	}
	if (jail_make_root(&j, err) < 0 || jail_copy_exec(&j, err) < 0 ||
	    jail_rlimits(&j, err) < 0 || jail_cgroup(&j, err) < 0 || jail_pivot(&j, err) < 0 ||
	    jail_devices_make(&j, err) < 0)
		goto undo;
	if (j.netns_fd >= 0 && setns(j.netns_fd, CLONE_NEWNET) < 0) {
		vs_err(err, errno, "setns %s", j.a.netns);
		goto undo;
	}
	int report_fd;
	pid_t pid = jail_fork(&j, &report_fd, err);
	if (pid < 0) {
		jail_child_failed(&j, *err);
		goto undo;
	}
	if (pid > 0) {
		r = jail_wait_exec(&j, pid, report_fd, err);
		goto out;
	}
	jail_exec(&j, err);
	jail_child_failed(&j, *err);
	r = -1;
	goto out;
undo:
	if (j.cg_entered)
		vs_warn("jail: the cgroup %s stays: this process is in it", cgroup_path(j.cg));
	jail_undo(&j);
out:
	jail_free(&j);
	return r;
}
