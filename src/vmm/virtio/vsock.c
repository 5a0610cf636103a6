/* virtio-vsock: the device's queues (0 rx, 1 tx, 2 event) and the guest's CID in config
 * space; the muxer (vsock_mux.c) does the connections. Everything runs on the device's
 * worker: the guest's kicks, and the muxer's epoll fd, which is one fd of the worker's
 * own set, so a connection opened while the VM runs needs nothing from the transport.
 *
 * A snapshot keeps no connection (Firecracker's choice too): the restored device tells the
 * guest with a TRANSPORT_RESET event, and the guest drops its sockets and may reconnect. */
#include "vmm/virtio/vsock.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "base/log.h"
#include "vmm/virtio/queue.h"
#include "vmm/virtio/virtio.h"
#include "vmm/virtio/vsock_mux.h"
#include "vmm/virtio/vsock_pkt.h"
#include "vmm/virtio/vsock_spec.h"
#include "vmm/vm.h"

#define VSOCK_RXQ 0
#define VSOCK_TXQ 1
#define VSOCK_EVQ 2
#define VSOCK_QUEUE_MAX 256
#define VSOCK_CONFIG_LEN 8 /* le64 guest_cid */
#define VSOCK_SNAP_VERSION 1

struct vsock_dev {
	struct virtio_mmio *t;
	struct vsock_mux *mux;
	uint64_t cid;
	uint8_t config[VSOCK_CONFIG_LEN];
	atomic_bool active;
	bool broken;	    /* we called virtio_mmio_fail: nothing more until the reset */
	bool event_pending; /* a TRANSPORT_RESET to give the guest (after a restore) */
	bool rx_held;	    /* rx_chain was popped and not used yet */
	struct virtq_chain *rx_chain, *tx_chain, *ev_chain;
};

static void set_cid(struct vsock_dev *d, uint64_t cid)
{
	d->cid = cid;
	for (unsigned i = 0; i < VSOCK_CONFIG_LEN; i++)
		d->config[i] = (uint8_t)(cid >> (8 * i));
	vsock_mux_set_cid(d->mux, cid);
}

static void vsock_config_read(void *opaque, uint32_t off, uint8_t *data, uint32_t len)
{
	struct vsock_dev *d = opaque;
	for (uint32_t i = 0; i < len; i++)
		data[i] = (uint64_t)off + i < VSOCK_CONFIG_LEN ? d->config[off + i] : 0;
}

static int vsock_activate(void *opaque, uint64_t features)
{
	struct vsock_dev *d = opaque;
	(void)features;
	atomic_store(&d->active, true);
	return 0;
}

/* vCPU thread, work_lock held: the driver took its buffers back and forgot its sockets */
static void vsock_reset(void *opaque)
{
	struct vsock_dev *d = opaque;
	atomic_store(&d->active, false);
	d->broken = false;
	d->rx_held = false;
	vsock_mux_reset(d->mux);
}

static void vsock_fail(struct vsock_dev *d, const char *why)
{
	d->broken = true;
	virtio_mmio_fail(d->t, why);
}

static bool running(const struct vsock_dev *d)
{
	return atomic_load(&d->active) && !d->broken;
}

static void rx_process(struct vsock_dev *d)
{
	struct virtq *q = virtio_mmio_queue(d->t, VSOCK_RXQ);
	cleanup_err vs_err_t err = NULL;
	bool pushed = false;
	while (running(d) && vsock_mux_rx_pending(d->mux)) {
		if (!d->rx_held) {
			int r = virtq_pop(q, d->rx_chain, &err);
			if (r < 0) {
				vsock_fail(d, err->msg);
				return;
			}
			if (r == 0)
				break;
			if (d->rx_chain->n_out) {
				vsock_fail(d, "rx buffer has a device-readable part");
				return;
			}
			d->rx_held = true;
		}
		int64_t n = vsock_mux_rx(d->mux, d->rx_chain);
		if (n < 0) {
			vsock_fail(d, "rx buffer is smaller than a packet header");
			return;
		}
		if (n == 0)
			break;
		virtq_mark_written(q, d->rx_chain, (uint64_t)n);
		virtq_push(q, d->rx_chain->head, (uint32_t)n);
		d->rx_held = false;
		pushed = true;
	}
	if (pushed)
		virtio_mmio_notify_used(d->t, VSOCK_RXQ);
}

static void tx_process(struct vsock_dev *d)
{
	struct virtq *q = virtio_mmio_queue(d->t, VSOCK_TXQ);
	cleanup_err vs_err_t err = NULL;
	bool pushed = false;
	while (running(d)) {
		int r = virtq_pop(q, d->tx_chain, &err);
		if (r < 0) {
			vsock_fail(d, err->msg);
			break;
		}
		if (r == 0)
			break;
		const char *why = NULL;
		if (vsock_mux_tx(d->mux, d->tx_chain, &why) < 0) {
			vsock_fail(d, why);
			break;
		}
		virtq_push(q, d->tx_chain->head, 0);
		pushed = true;
	}
	if (pushed)
		virtio_mmio_notify_used(d->t, VSOCK_TXQ);
}

/* The TRANSPORT_RESET event, once the guest has an event buffer for it. */
static void event_process(struct vsock_dev *d)
{
	if (!d->event_pending || !running(d))
		return;
	struct virtq *q = virtio_mmio_queue(d->t, VSOCK_EVQ);
	cleanup_err vs_err_t err = NULL;
	int r = virtq_pop(q, d->ev_chain, &err);
	if (r < 0) {
		vsock_fail(d, err->msg);
		return;
	}
	if (r == 0)
		return;
	if (d->ev_chain->in_len < 4) {
		vsock_fail(d, "event buffer is smaller than an event");
		return;
	}
	uint8_t ev[4] = {VSOCK_EVENT_TRANSPORT_RESET, 0, 0, 0};
	virtq_chain_write(d->ev_chain, 0, ev, sizeof(ev));
	virtq_mark_written(q, d->ev_chain, sizeof(ev));
	virtq_push(q, d->ev_chain->head, sizeof(ev));
	d->event_pending = false;
	virtio_mmio_notify_used(d->t, VSOCK_EVQ);
}

/* Any queue's kick: the guest's packets first (they may open credit or connections), then
 * whatever waits for the guest. */
static void vsock_queue_notify(void *opaque, unsigned qi)
{
	struct vsock_dev *d = opaque;
	(void)qi;
	tx_process(d);
	event_process(d);
	rx_process(d);
}

static void vsock_fd_ready(void *opaque, int fd, uint32_t events)
{
	struct vsock_dev *d = opaque;
	(void)fd;
	(void)events;
	vsock_mux_poll(d->mux);
	rx_process(d);
}

static int vsock_save(void *opaque, void **blob, size_t *len, vs_err_t *err)
{
	struct vsock_dev *d = opaque;
	uint8_t *b = malloc(12);
	if (!b)
		return vs_err(err, ENOMEM, "vsock");
	uint32_t version = VSOCK_SNAP_VERSION;
	memcpy(b, &version, 4);
	memcpy(b + 4, &d->cid, 8);
	*blob = b;
	*len = 12;
	return 0;
}

static int vsock_restore(void *opaque, const void *blob, size_t len, vs_err_t *err)
{
	struct vsock_dev *d = opaque;
	uint32_t version;
	uint64_t cid;
	if (len != 12)
		return vs_err(err, 0, "vsock: state of %zu bytes (expected 12)", len);
	memcpy(&version, blob, 4);
	memcpy(&cid, (const uint8_t *)blob + 4, 8);
	if (version != VSOCK_SNAP_VERSION)
		return vs_err(err, 0, "vsock: format version %u (this vessel reads %u)", version,
			      VSOCK_SNAP_VERSION);
	if (cid < 3 || cid > UINT32_MAX - 1)
		return vs_err(err, 0, "vsock: guest_cid %llu is not a guest CID",
			      (unsigned long long)cid);
	/* the guest knows its CID from before; its connections did not come along */
	set_cid(d, cid);
	d->event_pending = true;
	return 0;
}

static void vsock_dev_free(void *opaque)
{
	struct vsock_dev *d = opaque;
	if (!d)
		return;
	vsock_mux_free(d->mux);
	free(d->rx_chain);
	free(d->tx_chain);
	free(d->ev_chain);
	free(d);
}

static const struct virtio_device_ops vsock_ops = {
    .name = "vsock",
    .device_id = VIRTIO_ID_VSOCK,
    .num_queues = 3,
    .queue_max = VSOCK_QUEUE_MAX,
    .config_read = vsock_config_read,
    .activate = vsock_activate,
    .queue_notify = vsock_queue_notify,
    .fd_ready = vsock_fd_ready,
    .reset = vsock_reset,
    .save = vsock_save,
    .restore = vsock_restore,
    .destroy = vsock_dev_free,
};

static void *vsock_create(struct vm *vm, const void *config, vs_err_t *err)
{
	const struct vsock_spec *s = config;
	if (device_find(vm, &virtio_vsock_kind)) {
		vs_err(err, 0, "vsock: a VM has one vsock device (Firecracker's rule too)");
		return NULL;
	}
	struct vsock_dev *d = calloc(1, sizeof(*d));
	if (!d || !(d->rx_chain = malloc(sizeof(*d->rx_chain))) ||
	    !(d->tx_chain = malloc(sizeof(*d->tx_chain))) ||
	    !(d->ev_chain = malloc(sizeof(*d->ev_chain)))) {
		vs_err(err, ENOMEM, "vsock");
		vsock_dev_free(d);
		return NULL;
	}
	d->mux = vsock_mux_new(s->cid, s->uds, err);
	if (!d->mux) {
		vsock_dev_free(d);
		return NULL;
	}
	set_cid(d, s->cid);
	int epfd = vsock_mux_epfd(d->mux);
	if (virtio_mmio_add(vm, &vsock_ops, d, &d->t, err) < 0) {
		vsock_dev_free(d);
		return NULL;
	}
	/* from here the transport owns d; level-triggered: the muxer drains its set */
	if (virtio_mmio_add_fd(d->t, epfd, EPOLLIN, err) < 0) {
		virtio_mmio_remove(d->t);
		return NULL;
	}
	vs_debug("vsock: guest cid %u, host sockets at %s", s->cid, s->uds);
	return d->t;
}

static int vsock_from_cli(const char *spec, void *config, vs_err_t *err)
{
	return vsock_spec_parse(spec, config, err);
}

static int vsock_from_json(json_t *obj, void *config, vs_err_t *err)
{
	return vsock_spec_from_json(obj, config, err);
}

const struct device_kind virtio_vsock_kind = {
    .name = "vsock",
    .cli_flag = "--vsock",
    .cli_value = true,
    .api_path = "/vsock",
    .json_key = "vsock",
    .virtio = true,
    .config_size = sizeof(struct vsock_spec),
    .from_cli = vsock_from_cli,
    .from_json = vsock_from_json,
    .create = vsock_create,
    .destroy = virtio_mmio_destroy,
    .save = virtio_mmio_save,
    .restore = virtio_mmio_restore,
};
