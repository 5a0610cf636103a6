/* A split virtqueue (virtio 1.x, 2.7) over guest memory, every guest value checked.
 *
 * The rings live in guest RAM and the guest may rewrite them at any moment: each
 * descriptor is copied once before it is trusted, every index is taken modulo or
 * checked against the queue size, every buffer must lie wholly in RAM, and a chain
 * may hold at most VIRTQ_MAX_SEGS descriptors. One thread (the device's worker) pops
 * and pushes; the transport sets the queue up and tears it down under its own lock. */
#ifndef VESSEL_VMM_VIRTIO_QUEUE_H
#define VESSEL_VMM_VIRTIO_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "vmm/memory.h"

#define VIRTQ_MAX_SEGS 256   /* descriptors in one chain, indirect ones included */
#define VIRTQ_MAX_SIZE 32768 /* the largest queue the spec allows */

struct virtq_seg {
	void *host; /* a host pointer into guest RAM, bounds-checked */
	uint32_t len;
};

struct virtq_chain {
	uint16_t head;
	uint16_t n_out, n_in; /* device-readable segments come first in the chain, then writable */
	struct virtq_seg out[VIRTQ_MAX_SEGS], in[VIRTQ_MAX_SEGS];
	uint64_t out_len, in_len; /* sums of the segment lengths */
};

/* The queue's state. Devices use it only through the functions below. */
struct virtq {
	const struct guest_mem *mem;
	uint16_t size; /* QueueNum: a power of two */
	bool event_idx, indirect;
	struct virtq_desc *desc;
	struct virtq_avail *avail;
	struct virtq_used *used;
	uint16_t last_avail;	 /* next avail ring slot to take */
	uint16_t used_idx;	 /* our copy of used->idx */
	uint16_t signalled_used; /* used_idx when the driver was last interrupted */
	bool ready;
};

/* The guest-physical addresses a driver gave for one queue (QueueDesc/Driver/Device). */
struct virtq_addrs {
	uint64_t desc, avail, used;
};

/* Checks the driver's set-up (size a power of two up to max, each ring aligned and
 * wholly in RAM) and makes q ready. -1 with err if the driver got it wrong. */
int virtq_init(struct virtq *q, const struct guest_mem *mem, uint16_t size,
	       const struct virtq_addrs *a, bool event_idx, bool indirect, vs_err_t *err);
/* A snapshot's queue: like virtq_init, but the rings' indices are the saved ones (the
 * used ring in RAM is left as the guest last saw it). -1 with err naming what is wrong. */
int virtq_restore(struct virtq *q, const struct guest_mem *mem, uint16_t size,
		  const struct virtq_addrs *a, bool event_idx, bool indirect, uint16_t last_avail,
		  uint16_t used_idx, uint16_t signalled_used, vs_err_t *err);
/* The rings' host addresses, as virtq_init checked them (inside guest RAM, sized for the
 * queue): what a vhost-user back-end is told (SET_VRING_ADDR). */
static inline void virtq_rings(const struct virtq *q, const void **desc, const void **avail,
			       const void **used)
{
	*desc = q->desc;
	*avail = q->avail;
	*used = q->used;
}
/* Forgets the rings (device reset). */
void virtq_reset(struct virtq *q);

/* 1: a chain was taken; 0: the queue is empty; -1: the driver broke the rules (err says how).
 * With EVENT_IDX, finding the queue empty re-arms the driver's notifications. */
int virtq_pop(struct virtq *q, struct virtq_chain *c, vs_err_t *err);
/* Dirty tracking (memory.h): the VMM's own writes into guest RAM. virtq_push marks the
 * used ring entry and idx itself; a device marks the buffer bytes it wrote, before the
 * push: the first `written` bytes of the chain's writable part, or any host range. */
void virtq_mark_written(struct virtq *q, const struct virtq_chain *c, uint64_t written);
void virtq_mark_host(struct virtq *q, const void *p, uint64_t len);
/* Gives a chain back with `written` bytes written into its device-writable part. */
void virtq_push(struct virtq *q, uint16_t head, uint32_t written);
/* After pushes: true if the driver asked to be interrupted for them (EVENT_IDX's
 * used_event, else VIRTQ_AVAIL_F_NO_INTERRUPT). Resets the EVENT_IDX window. */
bool virtq_should_interrupt(struct virtq *q);

/* Copies up to len bytes from the chain's device-readable part, from offset on;
 * returns the number copied. */
uint64_t virtq_chain_read(const struct virtq_chain *c, uint64_t offset, void *dst, uint64_t len);
/* Copies up to len bytes into the chain's device-writable part, from offset on;
 * returns the number copied. */
uint64_t virtq_chain_write(const struct virtq_chain *c, uint64_t offset, const void *src,
			   uint64_t len);

#endif
