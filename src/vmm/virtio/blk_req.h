/* A virtio-blk request (virtio 1.2, 5.2.6) taken apart from a popped chain.
 *
 * The chain's framing is the driver's choice: the 16-byte header may span device-readable
 * segments and the status byte is the last device-writable byte. Everything the device
 * decides on (header, discard ranges) is copied out of guest memory once, so a guest
 * rewriting its buffers mid-request cannot change what was checked. */
#ifndef VESSEL_VMM_VIRTIO_BLK_REQ_H
#define VESSEL_VMM_VIRTIO_BLK_REQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "base/error.h"
#include "vmm/virtio/queue.h"

#define BLK_SECTOR_SHIFT 9
#define BLK_SECTOR_SIZE (1u << BLK_SECTOR_SHIFT)
#define BLK_HDR_SIZE 16
/* Discard / write-zeroes: ranges in one request, sectors in one range (both in config). */
#define BLK_MAX_RANGES 16
#define BLK_MAX_RANGE_SECTORS (1u << 22) /* 2 GiB */
/* data segments in one request: the chain less header and status */
#define BLK_SEG_MAX (VIRTQ_MAX_SEGS - 2)

/* What the disk is, as far as checking a request goes. */
struct blk_geometry {
	uint64_t sectors;
	bool ro;
	bool discard, write_zeroes; /* offered (never on a read-only disk) */
};

struct blk_range {
	uint64_t offset, len; /* bytes */
	bool unmap;	      /* write zeroes may deallocate */
};

#define BLK_ANSWER_IO (-1)

struct blk_req {
	uint16_t head;
	uint32_t type;
	/* BLK_ANSWER_IO: do the I/O; else the status to answer with at once (IOERR, UNSUPP,
	 * or OK for a request with nothing to do) */
	int answer;
	uint8_t *status;
	uint64_t offset, len; /* IN/OUT: bytes on the disk; GET_ID: bytes to fill */
	unsigned niov;
	struct iovec iov[BLK_SEG_MAX]; /* IN/OUT/GET_ID data */
	unsigned nranges;
	struct blk_range ranges[BLK_MAX_RANGES]; /* DISCARD/WRITE_ZEROES */
};

/* 0: r is filled (r->answer says what to do); -1: the chain breaks the virtio-blk framing
 * rules and the device must fail (err says how). */
int blk_req_parse(const struct virtq_chain *c, const struct blk_geometry *g, struct blk_req *r,
		  vs_err_t *err);

/* Whether a parsed request's I/O still lies inside a disk of g (a request parsed before
 * the disk's file was swapped for a smaller one). */
bool blk_req_within(const struct blk_req *r, const struct blk_geometry *g);

/* Bytes the request moves, for the rate limiter (0 for flush and get-id). */
uint64_t blk_req_bytes(const struct blk_req *r);

#endif
