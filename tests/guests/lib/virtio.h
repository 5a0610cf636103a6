/* A small polling virtio-mmio (version 2) driver library for the tiny guests.
 *
 * Devices are found on the command line (`virtio_mmio.device=4K@0xd0000000:5`, as vessel
 * and QEMU microvm put them there). Queues live in memory from virtio_alloc (identity
 * mapped, paging off, so a pointer is a guest-physical address). Nothing here waits on
 * an interrupt: drivers kick and poll the used ring, with a TSC timeout so a VMM that
 * never answers shows up as a FAIL line, not a hang. Guest code is interpreted on
 * kvm_pvm hosts: keep requests big and exits few. */
#ifndef GUEST_VIRTIO_H
#define GUEST_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_RNG 4

#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_BIT(f) (1ull << (f))

#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

/* registers (virtio 1.x, 4.2.2) */
#define VIRTIO_MMIO_MAGIC 0x000
#define VIRTIO_MMIO_VERSION 0x004
#define VIRTIO_MMIO_DEVICE_ID 0x008
#define VIRTIO_MMIO_DEVICE_FEATURES 0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES 0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL 0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX 0x034
#define VIRTIO_MMIO_QUEUE_NUM 0x038
#define VIRTIO_MMIO_QUEUE_READY 0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS 0x060
#define VIRTIO_MMIO_INTERRUPT_ACK 0x064
#define VIRTIO_MMIO_STATUS 0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW 0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH 0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW 0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH 0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW 0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH 0x0a4
#define VIRTIO_MMIO_CONFIG 0x100

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

struct virtq_avail {
	uint16_t flags, idx;
	uint16_t ring[]; /* size entries, then used_event */
};

struct virtq_used_elem {
	uint32_t id, len;
};

struct virtq_used {
	uint16_t flags, idx;
	struct virtq_used_elem ring[]; /* size entries, then avail_event */
};

struct vdev {
	uint32_t base, irq, device_id;
	uint64_t features; /* negotiated */
};

struct vq {
	struct vdev *d;
	uint16_t index, size;
	volatile struct virtq_desc *desc;
	volatile struct virtq_avail *avail;
	volatile struct virtq_used *used;
	uint16_t free_head, num_free;
	uint16_t avail_idx;  /* our copy of avail->idx */
	uint16_t kicked_idx; /* avail_idx at the last notify (EVENT_IDX) */
	uint16_t last_used;  /* next used ring slot to read */
	bool event_idx;
};

/* A guest buffer for a chain: guest-physical address and length. */
struct vbuf {
	uint32_t addr, len;
};

/* Zeroed memory from a bump allocator above the guest image (never freed). Fails the
 * guest when RAM runs out. align is a power of two. */
void *virtio_alloc(uint32_t size, uint32_t align);

/* Every virtio_mmio.device= entry of the command line (up to max); the count. Only the
 * entries whose window holds a virtio-mmio version 2 device are returned. */
int virtio_find(struct vdev *out, int max);
/* The n-th (from 0) device with device_id; false if there is none. */
bool virtio_find_id(uint32_t device_id, int n, struct vdev *out);

static inline uint32_t virtio_read(const struct vdev *d, uint32_t reg)
{
	return *(volatile uint32_t *)(d->base + reg);
}

static inline void virtio_write(const struct vdev *d, uint32_t reg, uint32_t v)
{
	*(volatile uint32_t *)(d->base + reg) = v;
}

/* Reset, ACKNOWLEDGE, DRIVER, then features: VERSION_1 plus those of `want` the device
 * offers, then FEATURES_OK. Returns -1 (printing why) if the device refuses. */
int virtio_init(struct vdev *d, uint64_t want);
/* Sets up queue qi with `size` entries (0: QueueNumMax, capped at 256): rings in
 * virtio_alloc memory, EVENT_IDX as negotiated. -1 (printing why) on failure. */
int virtio_queue_setup(struct vdev *d, struct vq *q, uint16_t qi, uint16_t size);
void virtio_driver_ok(struct vdev *d);
/* Writes 0 to Status and waits until the device reads back 0. */
void virtio_reset(struct vdev *d);
static inline uint32_t virtio_status(const struct vdev *d)
{
	return virtio_read(d, VIRTIO_MMIO_STATUS);
}
/* Reads InterruptStatus and acknowledges what it read. */
uint32_t virtio_isr_ack(struct vdev *d);
uint8_t virtio_config8(const struct vdev *d, uint32_t off);
uint32_t virtio_config32(const struct vdev *d, uint32_t off);

/* Adds a chain of n_out device-readable then n_in device-writable buffers; returns the
 * head, or -1 if the queue has too few free descriptors. Not yet visible to the device. */
int vq_add(struct vq *q, const struct vbuf *out, int n_out, const struct vbuf *in, int n_in);
/* The same chain through one indirect descriptor (table: n_out + n_in entries, from
 * virtio_alloc, 16-byte aligned); needs VIRTIO_F_INDIRECT_DESC. */
int vq_add_indirect(struct vq *q, struct virtq_desc *table, const struct vbuf *out, int n_out,
		    const struct vbuf *in, int n_in);
/* Makes head available (no notify yet). */
void vq_publish(struct vq *q, uint16_t head);
/* Notifies the device if it wants to hear (EVENT_IDX's avail_event / NO_NOTIFY). */
void vq_kick(struct vq *q);
/* 1 with the used element's id and len, 0 when nothing is used yet; frees the chain's
 * direct descriptors. */
int vq_get_used(struct vq *q, uint32_t *id, uint32_t *len);
/* Polls vq_get_used for up to timeout_ticks TSC ticks: -1 on timeout. */
int vq_wait_used(struct vq *q, uint32_t *id, uint32_t *len, uint64_t timeout_ticks);

/* Convenience: add, publish, kick, wait (STOP_WAIT_TICKS); the used len, or -1. */
int vq_transfer(struct vq *q, const struct vbuf *out, int n_out, const struct vbuf *in, int n_in);

static inline uint32_t vaddr(const volatile void *p)
{
	return (uint32_t)(uintptr_t)p;
}

#endif
