/* io_uring backend of virtio-blk. */
#include "vmm/virtio/blk_io.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/virtio_blk.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"

int blk_io_open(struct blk_io *b, const char *path, bool ro, bool direct, vs_err_t *err)
{
	*b = (struct blk_io){.fd = -1, .efd = -1};
	int flags = (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC | (direct ? O_DIRECT : 0);
	cleanup_close int fd = open(path, flags);
	if (fd < 0)
		return vs_err(err, errno, "open `%s`%s", path,
			      errno == EACCES || errno == EROFS ? " (add ,ro for read-only)" : "");
	struct stat st;
	if (fstat(fd, &st) < 0)
		return vs_err(err, errno, "stat `%s`", path);
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &b->size) < 0)
			return vs_err(err, errno, "`%s`: BLKGETSIZE64", path);
		b->blockdev = true;
	} else if (S_ISREG(st.st_mode)) {
		b->size = (uint64_t)st.st_size;
	} else {
		return vs_err(err, 0, "`%s`: not a regular file or block device", path);
	}
	if (b->size < BLK_SECTOR_SIZE)
		return vs_err(err, 0, "`%s`: %llu bytes, smaller than one 512-byte sector", path,
			      (unsigned long long)b->size);
	b->fd = steal_fd(fd);
	return 0;
}

void blk_io_swap_file(struct blk_io *b, struct blk_io *from)
{
	if (b->fd >= 0)
		close(b->fd);
	b->fd = from->fd;
	b->size = from->size;
	b->blockdev = from->blockdev;
	from->fd = -1;
}

int blk_io_start(struct blk_io *b, unsigned depth, vs_err_t *err)
{
	int r = io_uring_queue_init(depth, &b->ring, 0);
	if (r < 0)
		return vs_err(err, -r, "io_uring_queue_init");
	b->ring_up = true;
	b->depth = depth;
	b->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->efd < 0)
		return vs_err(err, errno, "eventfd");
	r = io_uring_register_eventfd(&b->ring, b->efd);
	if (r < 0)
		return vs_err(err, -r, "io_uring_register_eventfd");
	return 0;
}

void blk_io_close(struct blk_io *b)
{
	if (b->ring_up) {
		blk_io_drain(b);
		io_uring_queue_exit(&b->ring);
		b->ring_up = false;
	}
	if (b->efd >= 0)
		close(b->efd);
	if (b->fd >= 0)
		close(b->fd);
	b->efd = b->fd = -1;
}

unsigned blk_io_sqes(const struct blk_req *r)
{
	if (r->answer != BLK_ANSWER_IO)
		return 0;
	switch (r->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
	case VIRTIO_BLK_T_FLUSH:
		return 1;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return r->nranges;
	default:
		return 0;
	}
}

static struct io_uring_sqe *get_sqe(struct blk_io *b, void *tag)
{
	/* blk_io_room() was checked, so the ring has space */
	struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
	io_uring_sqe_set_data(sqe, tag);
	b->inflight++;
	b->unsubmitted++;
	return sqe;
}

void blk_io_queue(struct blk_io *b, const struct blk_req *r, void *tag)
{
	switch (r->type) {
	case VIRTIO_BLK_T_IN:
		io_uring_prep_readv(get_sqe(b, tag), b->fd, r->iov, r->niov, r->offset);
		break;
	case VIRTIO_BLK_T_OUT:
		io_uring_prep_writev(get_sqe(b, tag), b->fd, r->iov, r->niov, r->offset);
		break;
	case VIRTIO_BLK_T_FLUSH:
		io_uring_prep_fsync(get_sqe(b, tag), b->fd, IORING_FSYNC_DATASYNC);
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		for (unsigned i = 0; i < r->nranges; i++) {
			const struct blk_range *g = &r->ranges[i];
			/* A punched hole reads back as zeros, on files and (as a discard that
			 * zeroes) on block devices alike. */
			int mode = FALLOC_FL_KEEP_SIZE;
			if (r->type == VIRTIO_BLK_T_DISCARD || g->unmap)
				mode |= FALLOC_FL_PUNCH_HOLE;
			else
				mode |= FALLOC_FL_ZERO_RANGE;
			io_uring_prep_fallocate(get_sqe(b, tag), b->fd, mode, g->offset, g->len);
		}
		break;
	}
}

int blk_io_submit(struct blk_io *b, vs_err_t *err)
{
	while (b->unsubmitted) {
		int r = io_uring_submit(&b->ring);
		if (r == -EINTR || r == -EAGAIN || r == -EBUSY)
			continue;
		if (r < 0)
			return vs_err(err, -r, "io_uring_submit");
		b->unsubmitted -= (unsigned)r < b->unsubmitted ? (unsigned)r : b->unsubmitted;
	}
	return 0;
}

void blk_io_reap(struct blk_io *b, void (*fn)(void *arg, void *tag, int res), void *arg)
{
	uint64_t n;
	if (read(b->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	struct io_uring_cqe *cqe;
	while (io_uring_peek_cqe(&b->ring, &cqe) == 0) {
		void *tag = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&b->ring, cqe);
		b->inflight--;
		fn(arg, tag, res);
	}
}

void blk_io_wait_all(struct blk_io *b, void (*fn)(void *arg, void *tag, int res), void *arg)
{
	vs_err_t err = NULL;
	if (blk_io_submit(b, &err) < 0)
		vs_err_free(&err);
	while (b->inflight) {
		struct io_uring_cqe *cqe;
		int r = io_uring_wait_cqe(&b->ring, &cqe);
		if (r == -EINTR)
			continue;
		if (r < 0)
			break;
		blk_io_reap(b, fn, arg);
	}
}

static void discard_completion(void *arg, void *tag, int res)
{
	(void)arg;
	(void)tag;
	(void)res;
}

void blk_io_drain(struct blk_io *b)
{
	blk_io_wait_all(b, discard_completion, NULL);
}

int blk_io_finish_rw(struct blk_io *b, const struct blk_req *r, uint64_t done)
{
	bool write = r->type == VIRTIO_BLK_T_OUT;
	uint64_t pos = 0;
	for (unsigned i = 0; i < r->niov; i++) {
		uint8_t *base = r->iov[i].iov_base;
		uint64_t len = r->iov[i].iov_len;
		uint64_t skip = done > pos ? done - pos : 0;
		pos += len;
		while (skip < len) {
			ssize_t n = write ? pwrite(b->fd, base + skip, len - skip,
						   (off_t)(r->offset + pos - len + skip))
					  : pread(b->fd, base + skip, len - skip,
						  (off_t)(r->offset + pos - len + skip));
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -errno;
			if (n == 0)
				return -EIO; /* the file shrank under us */
			skip += (uint64_t)n;
		}
	}
	return 0;
}

int blk_io_zero_sync(struct blk_io *b, const struct blk_range *g)
{
	if (fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)g->offset,
		      (off_t)g->len) == 0)
		return 0;
	static const uint8_t zeros[64 << 10];
	for (uint64_t at = 0; at < g->len;) {
		size_t n = g->len - at < sizeof(zeros) ? g->len - at : sizeof(zeros);
		ssize_t w = pwrite(b->fd, zeros, n, (off_t)(g->offset + at));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		at += (uint64_t)w;
	}
	return 0;
}
