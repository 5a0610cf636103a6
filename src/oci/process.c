#include "oci/process.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/util.h"
#include "oci/caps.h"

int process_set_rlimits(const struct spec_process *p, vs_err_t *err)
{
	for (size_t i = 0; i < p->n_rlimits; i++) {
		struct rlimit rl = {.rlim_cur = p->rlimits[i].soft, .rlim_max = p->rlimits[i].hard};
		if (setrlimit(p->rlimits[i].resource, &rl) < 0)
			return vs_err(err, errno, "process.rlimits[%zu]: setrlimit", i);
	}
	return 0;
}

int process_set_identity(const struct spec_process *p, bool set_groups, vs_err_t *err)
{
	if (caps_prepare(&p->caps, err) < 0)
		return -1;
	if (set_groups &&
	    setgroups(p->user.n_additional_gids, p->user.additional_gids) < 0)
		return vs_err(err, errno, "process.user.additionalGids: setgroups");
	if (setresgid(p->user.gid, p->user.gid, p->user.gid) < 0)
		return vs_err(err, errno, "process.user.gid: setgid(%u)", p->user.gid);
	if (setresuid(p->user.uid, p->user.uid, p->user.uid) < 0)
		return vs_err(err, errno, "process.user.uid: setuid(%u)", p->user.uid);
	return caps_finish(&p->caps, err);
}

int process_prepare_fds(int preserve_fds, vs_err_t *err)
{
	unsigned first_closed = 3u + (unsigned)preserve_fds;
	for (int fd = 0; fd < (int)first_closed; fd++) {
		int fl = fcntl(fd, F_GETFD);
		if (fl >= 0 && (fl & FD_CLOEXEC))
			fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
	}
	/* nothing the runtime holds may reach the container's program */
	if (syscall(SYS_close_range, first_closed, ~0u, CLOSE_RANGE_CLOEXEC) < 0)
		return vs_err(err, errno, "close_range");
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
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int process_exec(const struct spec_process *p, vs_err_t *err)
{
	char *empty_env[] = {NULL};
	char **env = p->env ? p->env : empty_env;
	const char *arg0 = p->args[0];
	char found[4096];
	if (!strchr(arg0, '/')) {
		const char *path = env_get(env, "PATH");
		if (!path)
			path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
		bool ok = false;
		while (*path && !ok) {
			const char *end = strchrnul(path, ':');
			int len = (int)(end - path);
			if (snprintf(found, sizeof(found), "%.*s/%s", len ? len : 1, len ? path : ".",
				     arg0) < (int)sizeof(found))
				ok = is_executable(found);
			path = *end ? end + 1 : end;
		}
		if (!ok)
			return vs_err(err, ENOENT, "exec: `%s`: executable file not found in $PATH",
				      arg0);
		arg0 = found;
	}
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	execve(arg0, p->args, env);
	return vs_err(err, errno, "exec `%s`", p->args[0]);
}
