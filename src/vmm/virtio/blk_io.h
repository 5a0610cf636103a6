/* virtio-blk's backend: a raw file or block device driven through io_uring.
 *
 * The device queues every request it took from the virtqueue, then submits them in one
 * io_uring_enter; completions come back on an eventfd the device's worker watches. Requests
 * that io_uring cannot finish in one go (a short transfer, write-zeroes on a file system
 * without FALLOC_FL_ZERO_RANGE) are finished synchronously on the worker: rare paths. */
#ifndef VESSEL_VMM_VIRTIO_BLK_IO_H
#define VESSEL_VMM_VIRTIO_BLK_IO_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "vmm/virtio/blk_req.h"

struct blk_io {
	int fd;
	bool blockdev;
	uint64_t size; /* bytes */
	struct io_uring ring;
	bool ring_up;
	int efd;	   /* completions (io_uring_register_eventfd) */
	unsigned depth;	   /* submission queue entries */
	unsigned inflight; /* SQEs queued or submitted, not yet reaped */
	unsigned unsubmitted;
};

/* Opens PATH (O_RDONLY when ro: the file is never opened for writing) and learns its size.
 * direct: O_DIRECT (the guest's buffers and offsets must then suit the device). */
int blk_io_open(struct blk_io *b, const char *path, bool ro, bool direct, vs_err_t *err);
/* Puts the file `from` holds (blk_io_open'd, never started) in b's place and closes b's
 * old one; from is left with no file. Nothing may be in flight (a pause). */
void blk_io_swap_file(struct blk_io *b, struct blk_io *from);
/* The ring (depth SQEs) and its completion eventfd. */
int blk_io_start(struct blk_io *b, unsigned depth, vs_err_t *err);
void blk_io_close(struct blk_io *b);

/* SQEs request r needs (0: it does no I/O). */
unsigned blk_io_sqes(const struct blk_req *r);
/* Whether n more SQEs fit now. */
static inline bool blk_io_room(const struct blk_io *b, unsigned n)
{
	return b->inflight + n <= b->depth;
}
/* Queues r's I/O (blk_io_room must have said yes); each SQE completes with `tag`. */
void blk_io_queue(struct blk_io *b, const struct blk_req *r, void *tag);
/* One io_uring_enter for everything queued. */
int blk_io_submit(struct blk_io *b, vs_err_t *err);

/* Reaps every completion: fn(arg, tag, res) with res as io_uring gives it (-errno or the
 * byte count). Clears the eventfd first, so nothing that lands meanwhile is missed. */
void blk_io_reap(struct blk_io *b, void (*fn)(void *arg, void *tag, int res), void *arg);
/* Submits what is queued and waits for all of it, reaping each completion through fn as
 * blk_io_reap does (a pause: nothing may be in flight). */
void blk_io_wait_all(struct blk_io *b, void (*fn)(void *arg, void *tag, int res), void *arg);
/* Waits for everything in flight and drops it (device reset). */
void blk_io_drain(struct blk_io *b);

/* Synchronous completion of what io_uring left undone; returns 0 or -errno.
 * For IN/OUT: `done` bytes are already transferred. */
int blk_io_finish_rw(struct blk_io *b, const struct blk_req *r, uint64_t done);
/* Zeroes a range without FALLOC_FL_ZERO_RANGE: punches a hole, else writes zeros. */
int blk_io_zero_sync(struct blk_io *b, const struct blk_range *range);

#endif
