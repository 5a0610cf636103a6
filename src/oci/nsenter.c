#include "oci/nsenter.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

int ns_enter_pid_for_child(int ns_fd, int *own, vs_err_t *err)
{
	*own = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	if (*own < 0)
		return vs_err(err, errno, "open our own pid namespace");
	if (setns(ns_fd, CLONE_NEWPID) < 0) {
		int e = errno;
		close(*own);
		*own = -1;
		return vs_err(err, e, "join the container's pid namespace");
	}
	return 0;
}

int ns_restore_pid_for_children(int *own, vs_err_t *err)
{
	if (*own < 0)
		return 0;
	int rc = setns(*own, CLONE_NEWPID);
	int e = errno;
	close(*own);
	*own = -1;
	if (rc < 0)
		return vs_err(err, e, "return to our own pid namespace");
	return 0;
}
