/* virtio devices on the virtio-mmio transport (virtio 1.x, register layout version 2).
 *
 * A device fills a struct virtio_device_ops and calls virtio_mmio_add; the transport
 * does the rest: a 4 KiB register window in the virtio MMIO area, an IRQ line raised
 * through an irqfd, one ioeventfd per QueueNotify value, and a worker thread that runs
 * the device's callbacks, so no device work ever happens on a vCPU thread. */
#ifndef VESSEL_VMM_VIRTIO_VIRTIO_H
#define VESSEL_VMM_VIRTIO_VIRTIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "vmm/boot/acpi.h"
#include "vmm/virtio/queue.h"

struct vm;
struct virtio_mmio;

#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_RNG 4

/* feature bits the transport handles */
#define VIRTIO_F_RING_INDIRECT_DESC 28
#define VIRTIO_F_RING_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

/* device status bits */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

#define VIRTIO_MMIO_WINDOW 0x1000
#define VIRTIO_MMIO_MAX_DEVICES 16
#define VIRTIO_MMIO_FIRST_GSI 5 /* like Firecracker: IOAPIC pins 5.. */
#define VIRTIO_MMIO_MAX_QUEUES 8

struct virtio_device_ops {
	const char *name;    /* "blk", "net", "rng" (logs) */
	uint32_t device_id;  /* VIRTIO_ID_BLOCK 2, VIRTIO_ID_NET 1, VIRTIO_ID_RNG 4 */
	uint64_t features;   /* device features offered; the transport adds VERSION_1,
				RING_EVENT_IDX and RING_INDIRECT_DESC itself */
	uint16_t num_queues; /* at most VIRTIO_MMIO_MAX_QUEUES */
	uint16_t queue_max;  /* QueueNumMax */
	/* The queues are served by another process (a vhost-user back-end): the transport
	 * does not watch their doorbells (virtio_mmio_doorbell_fd hands them over) and never
	 * calls queue_notify; the device raises interrupts with virtio_mmio_raise_used. */
	bool backend_queues;
	/* config space (offset within the device-specific config); may be NULL. These run
	 * on a vCPU thread, concurrently with the worker (but never with a
	 * virtio_mmio_reconfigure). off is guest-chosen (0..0xeff) and len is 1, 2, 4 or 8:
	 * clip to the real config; a read must fill all of data. */
	void (*config_read)(void *dev, uint32_t off, uint8_t *data, uint32_t len);
	void (*config_write)(void *dev, uint32_t off, const uint8_t *data, uint32_t len);
	/* DRIVER_OK: features are final, queues are set; return -1 to fail the device */
	int (*activate)(void *dev, uint64_t features);
	/* queue qi was kicked; runs on the device's own worker thread, never a vCPU thread.
	 * Also called for every queue when a virtio_mmio_wake_after timer fires. */
	void (*queue_notify)(void *dev, unsigned qi);
	/* an fd the device added with virtio_mmio_add_fd became ready (worker thread); only
	 * while the device is active and not failed (the fd is not polled otherwise) */
	void (*fd_ready)(void *dev, int fd, uint32_t events);
	void (*reset)(void *dev); /* the driver wrote 0 to Status; stop using the queues */
	/* the VM pauses: finish every request in flight (answer it on the used ring) before
	 * returning; worker thread, work_lock held. NULL: the device's work is synchronous */
	void (*quiesce)(void *dev);
	/* A snapshot's part of the device beyond the transport (config space, its backend's
	 * identity); the VM is paused. save mallocs *blob. restore runs on a freshly created,
	 * paused device: it checks every field before it changes anything and fails with
	 * err naming the field. Both NULL: the device has nothing of its own to keep. */
	int (*save)(void *dev, void **blob, size_t *len, vs_err_t *err);
	int (*restore)(void *dev, const void *blob, size_t len, vs_err_t *err);
	/* the VM is going and the worker has stopped: free dev (may be NULL) */
	void (*destroy)(void *dev);
};

/* Registers a device: the first free 4 KiB window in the virtio MMIO area, an IRQ line
 * (irqfd), doorbells (ioeventfds) for QueueNotify and a worker thread, all through the
 * VM's functions. On success the transport owns dev (ops->destroy frees it with the
 * transport); on failure the caller still does. The device's kind then hands the
 * transport to the VM (device.h), which lists it in the DSDT and on the command line. */
int virtio_mmio_add(struct vm *vm, const struct virtio_device_ops *ops, void *dev,
		    struct virtio_mmio **out, vs_err_t *err);
struct virtq *virtio_mmio_queue(struct virtio_mmio *t, unsigned qi);
/* The device behind a transport (a kind's state is its transport). */
void *virtio_mmio_device(struct virtio_mmio *t);
/* After pushes to queue qi: raises the used-buffer interrupt if the driver wants one
 * (EVENT_IDX / VIRTQ_AVAIL_F_NO_INTERRUPT honoured). */
void virtio_mmio_notify_used(struct virtio_mmio *t, unsigned qi);
/* The eventfd KVM signals when the driver writes qi to QueueNotify (an ioeventfd): for a
 * device with backend_queues, the kick its back-end waits on. The transport keeps it. */
int virtio_mmio_doorbell_fd(struct virtio_mmio *t, unsigned qi);
/* Raises the used-buffer interrupt unconditionally: a back-end that signalled its call fd
 * has already decided the driver wants one (EVENT_IDX is its business then). */
void virtio_mmio_raise_used(struct virtio_mmio *t);
/* A malformed chain or request: sets DEVICE_NEEDS_RESET, raises a config interrupt, logs once
 * (with the why), and the device stops processing until the driver resets it. */
void virtio_mmio_fail(struct virtio_mmio *t, const char *why);
/* The device's own fds (a tap, an io_uring completion eventfd) join its worker's epoll,
 * as many as it has. Takes work_lock: call it while setting up, not from a callback. */
int virtio_mmio_add_fd(struct virtio_mmio *t, int fd, uint32_t events, vs_err_t *err);
/* Wake the worker after `ms` milliseconds (a rate-limited device waiting for tokens). */
void virtio_mmio_wake_after(struct virtio_mmio *t, unsigned ms);
/* Raises the configuration-change interrupt (a device whose config space changed). */
void virtio_mmio_notify_config(struct virtio_mmio *t);

/* Pause (the VM's vCPUs are parked): the worker finishes what is in flight (ops->quiesce)
 * and waits, taking no events, until virtio_mmio_resume. Returns once it waits. */
void virtio_mmio_pause(struct virtio_mmio *t);
void virtio_mmio_resume(struct virtio_mmio *t);

/* A change to a live device (the API's PATCH of a drive or an interface), from the
 * controller's thread: fn(dev, arg, err) runs with the device's worker parked and nothing
 * in flight (ops->quiesce), whether the VM runs or is paused, and no config space read in
 * progress. fn returns 0 (done), 1 (done, and the config space changed: its generation
 * moves on and a running driver gets the configuration-change interrupt) or -1 with err
 * (it must then have changed nothing). The worker then looks at every queue again. */
typedef int (*virtio_reconfigure_fn)(void *dev, void *arg, vs_err_t *err);
int virtio_mmio_reconfigure(struct virtio_mmio *t, virtio_reconfigure_fn fn, void *arg,
			    vs_err_t *err);

/* A kind's save/restore for a virtio device (state is its struct virtio_mmio): the
 * transport's registers, each queue's addresses and indices, then the device's own part.
 * Save: the VM is paused. Restore: on a freshly created device, after devices_pause; the
 * blob is untrusted (every field checked, queues inside guest RAM); on failure nothing
 * changed and err names the device and the field. */
int virtio_mmio_save(void *state, void **blob, size_t *len, vs_err_t *err);
int virtio_mmio_restore(void *state, const void *blob, size_t len, vs_err_t *err);

/* The window and IRQ of the i-th device (pure: dump-acpi uses it without a VM). */
void virtio_mmio_slot(unsigned i, struct acpi_virtio_mmio *out);
/* What the VM's virtio devices need from boot: DSDT entries (up to max; returns the count)
 * and the " virtio_mmio.device=4K@0xd0000000:5 ..." command-line words (caller frees). */
size_t virtio_mmio_acpi(const struct vm *vm, struct acpi_virtio_mmio *out, size_t max);
char *virtio_mmio_cmdline(const struct vm *vm);
/* Stops the worker and frees the transport and its device. _remove also gives back the
 * window, IRQ and doorbells (a device unplugged from a running VM); _destroy is a kind's
 * destroy, for a VM that is going (KVM drops all of it with the VM). */
void virtio_mmio_remove(struct virtio_mmio *t);
void virtio_mmio_destroy(void *t);

#endif
