#include "oci/selfexe.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/memfd.h>
#include <linux/mount.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

#define REQUIRED_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)
/* the number of the view's fd, from the image that made it to the one it runs */
#define VIEW_FD_ENV "_VESSEL_EXE_VIEW_FD"

extern char **environ;

bool selfexe_is_sealed(void)
{
	cleanup_close int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals >= 0 && (seals & REQUIRED_SEALS) == REQUIRED_SEALS)
		return true;
	/* opening the exe for writing through a read-only mount fails with EROFS */
	struct statvfs sv;
	return fstatvfs(fd, &sv) == 0 && (sv.f_flag & ST_RDONLY);
}

/* A detached read-only bind mount of our own binary, as an O_PATH fd (runc 1.2 does
 * the same). Needs CAP_SYS_ADMIN; -1 when the kernel or our privileges refuse it. */
static int readonly_view(void)
{
	int fd = (int)syscall(SYS_open_tree, AT_FDCWD, "/proc/self/exe",
			      OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (fd < 0)
		return -1;
	struct mount_attr attr = {
		.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
	};
	if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int sealed_copy(vs_err_t *err)
{
	cleanup_close int src = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (src < 0)
		return vs_err(err, errno, "open /proc/self/exe");
	struct stat st;
	if (fstat(src, &st) < 0)
		return vs_err(err, errno, "stat /proc/self/exe");
	cleanup_close int mfd = memfd_create("vessel", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0)
		return vs_err(err, errno, "memfd_create");
	off_t off = 0;
	while (off < st.st_size) {
		ssize_t n = sendfile(mfd, src, &off, (size_t)(st.st_size - off));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return vs_err(err, n < 0 ? errno : EIO, "copy vessel binary to memfd");
	}
	if (fcntl(mfd, F_ADD_SEALS, REQUIRED_SEALS) < 0)
		return vs_err(err, errno, "seal memfd");
	return steal_fd(mfd);
}

/* Closing the last fd of the view dissolves its detached mount, which waits for an RCU
 * grace period (0.1 ms on an idle development host, 1 to 7 ms when it is busy). Closed
 * on exec, that wait came first in the re-executed image; instead the view is inherited
 * and closed on a thread while the command reads its config and makes its cgroups, and
 * selfexe_settle joins the thread before anything is cloned. */
static pthread_t dissolver;
static bool dissolving;

static void *dissolve(void *fd)
{
	close((int)(intptr_t)fd);
	return NULL;
}

static void dissolve_inherited_view(void)
{
	const char *v = getenv(VIEW_FD_ENV);
	if (!v)
		return;
	int fd = atoi(v);
	unsetenv(VIEW_FD_ENV);
	/* only a handle on our own binary is ever closed, whoever set the variable: never a
	 * descriptor handed to the container (--preserve-fds) */
	struct stat view, self;
	if (fd < 3 || fstat(fd, &view) < 0 || stat("/proc/self/exe", &self) < 0 ||
	    view.st_dev != self.st_dev || view.st_ino != self.st_ino)
		return;
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	/* signals for the command (run forwards them) must never land on the thread */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	dissolving = pthread_create(&dissolver, NULL, dissolve, (void *)(intptr_t)fd) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!dissolving)
		close(fd);
}

void selfexe_settle(void)
{
	if (dissolving)
		pthread_join(dissolver, NULL);
	dissolving = false;
}

int selfexe_reexec_sealed(char **argv, vs_err_t *err)
{
	if (selfexe_is_sealed()) {
		dissolve_inherited_view();
		return 0;
	}
	int fd = readonly_view();
	if (fd < 0) {
		vs_debug("no read-only bind mount of the binary (%m): using a sealed copy");
		fd = sealed_copy(err);
		if (fd < 0)
			return -1;
	} else {
		char num[16];
		snprintf(num, sizeof(num), "%d", fd);
		if (fcntl(fd, F_SETFD, 0) < 0 || setenv(VIEW_FD_ENV, num, 1) < 0)
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	/* execveat(AT_EMPTY_PATH) needs no /proc, unlike glibc's fexecve fallback */
	syscall(SYS_execveat, fd, "", argv, environ, AT_EMPTY_PATH);
	int e = errno;
	unsetenv(VIEW_FD_ENV);
	close(fd);
	return vs_err(err, e, "re-execute vessel from a read-only view of itself");
}
