#include "oci/oom_score.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/log.h"

/* 0, or the errno of the write (the kernel checks the value at write time) */
static int write_score(int fd, int value)
{
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "%d", value);
	if (pwrite(fd, buf, (size_t)n, 0) == n)
		return 0;
	return errno ? errno : EIO;
}

static int read_score(int fd, int *value, vs_err_t *err)
{
	char buf[16];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return vs_err(err, n < 0 ? errno : EIO, "read");
	buf[n] = '\0';
	char *end;
	long v = strtol(buf, &end, 10);
	if (end == buf || v < -1000 || v > 1000)
		return vs_err(err, 0, "unexpected content `%s`", buf);
	*value = (int)v;
	return 0;
}

/* The kernel's floor (oom_score_adj_min) is not readable, but what it accepts is
 * monotonic: every value at or above the floor, none below. The current value is at
 * or above it, so a bisection between the refused and the current value finds the
 * floor in at most 11 writes; a refused write changes nothing. */
static int lowest_accepted(int fd, int refused, int *got, vs_err_t *err)
{
	int ok = 0;
	if (read_score(fd, &ok, err) < 0)
		return -1;
	if (ok <= refused) /* raising is never refused: something else is wrong */
		return vs_err(err, EACCES, "write %d", refused);
	while (ok - refused > 1) {
		int mid = refused + (ok - refused) / 2;
		int e = write_score(fd, mid);
		if (e == 0)
			ok = mid;
		else if (e == EACCES)
			refused = mid;
		else
			return vs_err(err, e, "write %d", mid);
	}
	*got = ok;
	return 0;
}

int oom_score_apply(pid_t pid, int want, int *got, vs_err_t *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", (int)pid);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return vs_err(err, errno, "open `%s`", path);
	int rc = 0, e = write_score(fd, want);
	*got = want;
	if (e == EACCES) {
		rc = lowest_accepted(fd, want, got, err);
		if (rc == 0)
			vs_warn("process.oomScoreAdj: %d refused (lowering it needs "
				"CAP_SYS_RESOURCE): the container runs at %d, the lowest this "
				"host allows",
				want, *got);
	} else if (e) {
		rc = vs_err(err, e, "write %d", want);
	}
	if (rc < 0)
		vs_err_wrap(err, "`%s`", path);
	close(fd);
	return rc;
}
