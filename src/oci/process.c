#include "oci/process.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/util.h"
#include "oci/caps.h"
#include "oci/passwd.h"
#include "oci/sync.h"

static const enum spec_ns_type join_order[] = {NS_USER, NS_IPC,	 NS_UTS, NS_NET,
					       NS_CGROUP, NS_TIME, NS_MNT};

/* A rootless runtime's child may be born in the container's user namespace already
 * (nsenter.h); joining the one we are in is EINVAL. */
static bool in_this_namespace(int fd, const char *self)
{
	struct stat a, b;
	return fstat(fd, &a) == 0 && stat(self, &b) == 0 && a.st_ino == b.st_ino &&
	       a.st_dev == b.st_dev;
}

int process_join_namespaces(const int ns_fd[NS_COUNT], vs_err_t *err)
{
	for (size_t i = 0; i < ARRAY_SIZE(join_order); i++) {
		enum spec_ns_type t = join_order[i];
		if (t == NS_USER && ns_fd[t] >= 0 &&
		    in_this_namespace(ns_fd[t], "/proc/self/ns/user"))
			continue;
		if (ns_fd[t] >= 0 && setns(ns_fd[t], spec_ns_clone_flag(t)) < 0)
			return vs_err(err, errno, "join the container's %s namespace",
				      spec_ns_name(t));
	}
	return 0;
}

static int set_rlimits(const struct spec_process *p, vs_err_t *err)
{
	for (size_t i = 0; i < p->n_rlimits; i++) {
		struct rlimit rl = {.rlim_cur = p->rlimits[i].soft, .rlim_max = p->rlimits[i].hard};
		if (setrlimit(p->rlimits[i].resource, &rl) < 0)
			return vs_err(err, errno, "process.rlimits[%zu]: setrlimit", i);
	}
	return 0;
}

/* close_range is from Linux 5.9 and may be denied by a filter inherited from the runtime's
 * caller: then each fd /proc/self/fd lists is marked one by one. */
static int cloexec_listed_fds(int first, vs_err_t *err)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return vs_err(err, errno, "mark the runtime's fds close-on-exec: open /proc/self/fd");
	int self = dirfd(d);
	struct dirent *e;
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] == '.' || fd < first || fd == self)
			continue;
		int fl = fcntl(fd, F_GETFD);
		if (fl >= 0 && !(fl & FD_CLOEXEC))
			fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
	}
	closedir(d);
	return 0;
}

static int prepare_fds(int preserve_fds, vs_err_t *err)
{
	unsigned first_closed = 3u + (unsigned)preserve_fds;
	for (int fd = 0; fd < (int)first_closed; fd++) {
		int fl = fcntl(fd, F_GETFD);
		if (fl >= 0 && (fl & FD_CLOEXEC))
			fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
	}
	/* nothing the runtime holds may reach the container's program */
	if (syscall(SYS_close_range, first_closed, ~0u, CLOSE_RANGE_CLOEXEC) < 0)
		return cloexec_listed_fds((int)first_closed, err);
	return 0;
}

static const char *env_get(char **env, const char *key)
{
	size_t n = strlen(key);
	for (size_t i = 0; env && env[i]; i++)
		if (strncmp(env[i], key, n) == 0 && env[i][n] == '=')
			return env[i] + n + 1;
	return NULL;
}

static bool is_executable(const char *path)
{
	struct stat st;
	/* the kernel checks the permission at execve, as the user */
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

static int look_up_exe(const struct spec_process *p, char found[PATH_MAX], vs_err_t *err)
{
	const char *arg0 = p->args[0];
	if (strchr(arg0, '/')) {
		snprintf(found, PATH_MAX, "%s", arg0);
		return 0;
	}
	const char *path = env_get(p->env, "PATH");
	if (!path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	while (*path) {
		const char *end = strchrnul(path, ':');
		int len = (int)(end - path);
		if (snprintf(found, PATH_MAX, "%.*s/%s", len ? len : 1, len ? path : ".", arg0) <
			    PATH_MAX &&
		    is_executable(found))
			return 0;
		path = *end ? end + 1 : end;
	}
	return vs_err(err, ENOENT, "exec: `%s`: executable file not found in $PATH", arg0);
}

/* runc and crun: without HOME in process.env, the user's home from the rootfs's
 * /etc/passwd, else "/". Some programs crash without it. */
static int add_home(struct process_run *r, vs_err_t *err)
{
	const struct spec_process *p = r->p;
	r->env = p->env;
	if (env_get(p->env, "HOME"))
		return 0;
	char home[PATH_MAX] = "/";
	cleanup_free char *text = NULL;
	size_t len = 0;
	if (vs_read_file("/etc/passwd", 4 << 20, &text, &len, NULL) == 0 &&
	    !passwd_home(text, len, p->user.uid, home, sizeof(home)))
		snprintf(home, sizeof(home), "/");
	size_t n = 0;
	while (p->env && p->env[n])
		n++;
	/* lives until execve */
	char **env = calloc(n + 2, sizeof(*env));
	if (!env || asprintf(&env[n], "HOME=%s", home) < 0)
		return vs_err(err, ENOMEM, "process.env: HOME");
	if (n)
		memcpy(env, p->env, n * sizeof(*env));
	r->env = env;
	return 0;
}

static int set_identity(const struct spec_process *p, vs_err_t *err)
{
	/* in a user namespace whose setgroups is denied, the groups stay as they are */
	bool deny_setgroups = false;
	cleanup_free char *sg = NULL;
	if (vs_read_file("/proc/self/setgroups", 64, &sg, NULL, NULL) == 0)
		deny_setgroups = strncmp(sg, "deny", 4) == 0;
	if (caps_prepare(&p->caps, err) < 0)
		return -1;
	if (!deny_setgroups &&
	    setgroups(p->user.n_additional_gids, p->user.additional_gids) < 0)
		return vs_err(err, errno, "process.user.additionalGids: setgroups");
	if (setresgid(p->user.gid, p->user.gid, p->user.gid) < 0)
		return vs_err(err, errno, "process.user.gid: setgid(%u)", p->user.gid);
	if (setresuid(p->user.uid, p->user.uid, p->user.uid) < 0)
		return vs_err(err, errno, "process.user.uid: setuid(%u)", p->user.uid);
	return caps_finish(&p->caps, err);
}

static int install_seccomp(struct process_run *r, vs_err_t *err)
{
	if (r->p->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return vs_err(err, errno, "process.noNewPrivileges");
	int listener = -1;
	if (seccomp_install(r->seccomp, &listener, err) < 0)
		return vs_err_wrap(err, "linux.seccomp");
	r->seccomp_installed = true;
	if (listener < 0)
		return 0;
	/* the runtime hands it to listenerPath with the container's state */
	int rc = sync_send_fd(r->sync_fd, SYNC_SECCOMP, listener, err);
	close(listener);
	return rc < 0 ? vs_err_wrap(err, "linux.seccomp.listenerPath") : 0;
}

int process_setup(struct process_run *r, vs_err_t *err)
{
	const struct spec_process *p = r->p;
	if (set_rlimits(p, err) < 0 || placement_apply_sched(&p->sched, err) < 0 ||
	    placement_apply_ioprio(&p->ioprio, err) < 0 || prepare_fds(r->preserve_fds, err) < 0 ||
	    look_up_exe(p, r->exe, err) < 0 || add_home(r, err) < 0)
		return -1;
	/* as root first; a directory only the user may enter is tried again below */
	bool in_cwd = chdir(p->cwd) == 0;
	/* without no_new_privs a filter needs CAP_SYS_ADMIN, so it goes in before the
	 * capabilities are dropped (as runc does); one with a notify listener goes in now in
	 * any case, while the runtime is there to pass its fd on */
	if (r->seccomp && (!p->no_new_privileges || seccomp_prog_notifies(r->seccomp)) &&
	    install_seccomp(r, err) < 0)
		return -1;
	if (set_identity(p, err) < 0)
		return -1;
	umask(p->user.has_umask ? p->user.umask : 022);
	if (!in_cwd && chdir(p->cwd) < 0)
		return vs_err(err, errno, "process.cwd: chdir `%s`", p->cwd);
	return 0;
}

int process_finish(struct process_run *r, vs_err_t *err)
{
	const struct spec_process *p = r->p;
	if (p->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return vs_err(err, errno, "process.noNewPrivileges");
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	if (r->seccomp && !r->seccomp_installed && install_seccomp(r, err) < 0)
		return -1;
	char *empty_env[] = {NULL};
	execve(r->exe, p->args, r->env ? r->env : empty_env);
	return vs_err(err, errno, "exec `%s`", p->args[0]);
}
