#include "oci/selfexe.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/memfd.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/util.h"

#define REQUIRED_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

extern char **environ;

bool selfexe_is_sealed(void)
{
	cleanup_close int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	int seals = fcntl(fd, F_GET_SEALS);
	return seals >= 0 && (seals & REQUIRED_SEALS) == REQUIRED_SEALS;
}

int selfexe_reexec_sealed(char **argv, vs_err_t *err)
{
	if (selfexe_is_sealed())
		return 0;
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
	/* execveat(AT_EMPTY_PATH) needs no /proc, unlike glibc's fexecve fallback */
	syscall(SYS_execveat, mfd, "", argv, environ, AT_EMPTY_PATH);
	return vs_err(err, errno, "re-execute vessel from its sealed copy");
}
