#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"

static pid_t clone3_plain(struct clone_args *ca)
{
	return (pid_t)syscall(SYS_clone3, ca, sizeof(*ca));
}

static pid_t clone_entering(struct clone_args *ca, int pid_ns_fd, vs_err_t *err)
{
	cleanup_close int own = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	if (own < 0)
		return vs_err(err, errno, "open our own pid namespace");
	if (setns(pid_ns_fd, CLONE_NEWPID) < 0)
		return vs_err(err, errno, "join the container's pid namespace");
	pid_t pid = clone3_plain(ca);
	int e = errno;
	if (pid == 0)
		return 0;
	if (setns(own, CLONE_NEWPID) < 0) {
		int re = errno;
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		return vs_err(err, re, "return to our own pid namespace");
	}
	if (pid < 0) {
		errno = e;
		return vs_err(err, e, "clone into the container's pid namespace");
	}
	return pid;
}

static pid_t clone_through_helper(struct clone_args *ca, int pid_ns_fd, int user_ns_fd,
				  vs_err_t *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return vs_err(err, errno, "pipe");
	pid_t helper = fork();
	if (helper == 0) {
		close(p[0]);
		/* the helper's answer: the child's pid, or minus the errno of what failed */
		int answer;
		struct clone_args mine = *ca;
		/* clone3 takes no exit_signal with CLONE_PARENT: the child gets ours, SIGCHLD
		 * from fork */
		mine.flags |= CLONE_PARENT;
		mine.exit_signal = 0;
		if (user_ns_fd >= 0 && setns(user_ns_fd, CLONE_NEWUSER) < 0)
			answer = -errno;
		else if (setns(pid_ns_fd, CLONE_NEWPID) < 0)
			answer = -errno;
		else if ((answer = clone3_plain(&mine)) == 0) {
			close(p[1]);
			return 0; /* the child, the runtime's own */
		} else if (answer < 0)
			answer = -errno;
		(void)!write(p[1], &answer, sizeof(answer));
		_exit(0);
	}
	close(p[1]);
	int answer = -EPIPE;
	if (helper < 0)
		answer = -errno;
	else
		while (read(p[0], &answer, sizeof(answer)) < 0 && errno == EINTR)
			;
	close(p[0]);
	if (helper > 0)
		while (waitpid(helper, NULL, 0) < 0 && errno == EINTR)
			;
	if (answer > 0)
		return answer;
	errno = -answer;
	return vs_err(err, -answer,
		      "clone into the container's pid namespace (rootless, "
		      "through a helper)");
}

pid_t ns_clone_in_pid_ns(struct clone_args *ca, int pid_ns_fd, int user_ns_fd, bool rootless,
			 vs_err_t *err)
{
	if (pid_ns_fd < 0) {
		pid_t pid = clone3_plain(ca);
		return pid < 0 ? vs_err(err, errno, "clone") : pid;
	}
	if (!rootless)
		return clone_entering(ca, pid_ns_fd, err);
	return clone_through_helper(ca, pid_ns_fd, user_ns_fd, err);
}

int ns_join_path(const char *path, int nstype, vs_err_t *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vs_err(err, errno, "open namespace %s", path);
	if (setns(fd, nstype) < 0)
		return vs_err(err, errno, "setns %s", path);
	return 0;
}
