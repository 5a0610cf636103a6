/* Memory files: full, diff, and a diff merged into its base (see mem_file.h). */
#include "vmm/snapshot/mem_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE 4096u

static bool all_zero(const uint8_t *p)
{
	static const uint8_t zero[PAGE];
	return memcmp(p, zero, PAGE) == 0;
}

static int pwrite_all(int fd, const void *buf, size_t len, off_t off, const char *path,
		      vs_err_t *err)
{
	const uint8_t *b = buf;
	while (len > 0) {
		ssize_t n = pwrite(fd, b, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return vs_err(err, n < 0 ? errno : EIO, "write memory file `%s`", path);
		b += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* want(page) says which pages go in; runs of them are written with one pwrite each. */
static int write_pages(const struct guest_mem *m, const uint64_t *dirty, const char *path,
		       vs_err_t *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return vs_err(err, errno, "create memory file `%s`", path);
	int rc = -1;
	if (ftruncate(fd, (off_t)m->ram_size) < 0) {
		vs_err(err, errno, "size memory file `%s`", path);
		goto out;
	}
	uint64_t n = guest_mem_npages(m);
	for (uint64_t i = 0; i < n;) {
		bool in = dirty ? (dirty[i / 64] >> (i % 64)) & 1 : !all_zero(m->host + i * PAGE);
		if (!in) {
			i++;
			continue;
		}
		uint64_t j = i + 1;
		while (j < n &&
		       (dirty ? (dirty[j / 64] >> (j % 64)) & 1 : !all_zero(m->host + j * PAGE)))
			j++;
		if (pwrite_all(fd, m->host + i * PAGE, (j - i) * PAGE, (off_t)(i * PAGE), path,
			       err) < 0)
			goto out;
		i = j;
	}
	if (fsync(fd) < 0) {
		vs_err(err, errno, "fsync memory file `%s`", path);
		goto out;
	}
	rc = 0;
out:
	close(fd);
	if (rc < 0)
		unlink(path);
	return rc;
}

int mem_file_write_full(const struct guest_mem *m, const char *path, vs_err_t *err)
{
	return write_pages(m, NULL, path, err);
}

int mem_file_write_diff(const struct guest_mem *m, const uint64_t *dirty, const char *path,
			vs_err_t *err)
{
	return write_pages(m, dirty, path, err);
}

int mem_file_merge(const char *base, const char *diff, vs_err_t *err)
{
	int rc = -1, bfd = -1, dfd = open(diff, O_RDONLY | O_CLOEXEC);
	uint8_t *buf = NULL;
	if (dfd < 0)
		return vs_err(err, errno, "diff memory file `%s`", diff);
	bfd = open(base, O_WRONLY | O_CLOEXEC);
	if (bfd < 0) {
		vs_err(err, errno, "base memory file `%s`", base);
		goto out;
	}
	struct stat ds, bs;
	if (fstat(dfd, &ds) < 0 || fstat(bfd, &bs) < 0) {
		vs_err(err, errno, "stat `%s` or `%s`", diff, base);
		goto out;
	}
	if (ds.st_size != bs.st_size) {
		vs_err(err, 0, "diff `%s` is %lld bytes, its base `%s` %lld: not the same guest",
		       diff, (long long)ds.st_size, base, (long long)bs.st_size);
		goto out;
	}
	buf = malloc(1u << 20);
	if (!buf) {
		vs_err(err, ENOMEM, "merge buffer");
		goto out;
	}
	off_t off = 0;
	for (;;) {
		off_t data = lseek(dfd, off, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break; /* no data past off */
		if (data < 0) {
			vs_err(err, errno, "SEEK_DATA in `%s`", diff);
			goto out;
		}
		off_t hole = lseek(dfd, data, SEEK_HOLE);
		if (hole < 0) {
			vs_err(err, errno, "SEEK_HOLE in `%s`", diff);
			goto out;
		}
		for (off_t at = data; at < hole;) {
			size_t want =
			    (size_t)(hole - at) < (1u << 20) ? (size_t)(hole - at) : 1u << 20;
			ssize_t got = pread(dfd, buf, want, at);
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0) {
				vs_err(err, got < 0 ? errno : EIO, "read `%s`", diff);
				goto out;
			}
			if (pwrite_all(bfd, buf, (size_t)got, at, base, err) < 0)
				goto out;
			at += got;
		}
		off = hole;
	}
	if (fsync(bfd) < 0) {
		vs_err(err, errno, "fsync `%s`", base);
		goto out;
	}
	rc = 0;
out:
	free(buf);
	if (bfd >= 0)
		close(bfd);
	close(dfd);
	return rc;
}
