/* virtio-net over a tap. Queue 0 receives (tap -> guest), queue 1 transmits (guest -> tap);
 * both run on the device's worker thread. Transmit hands the guest's buffers straight to
 * writev; receive reads one frame into a bounce buffer and copies it over as many of the
 * guest's buffers as it needs (mergeable receive buffers), so a guest that posts small
 * buffers still gets 64 KiB TSO frames. */
#include "vmm/virtio/net.h"

#include <errno.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/log.h"
#include "base/ratelimit.h"
#include "base/util.h"
#include "vmm/virtio/net_frame.h"
#include "vmm/virtio/net_spec.h"
#include "vmm/virtio/queue.h"
#include "vmm/virtio/tap.h"
#include "vmm/virtio/virtio.h"
#include "vmm/vm.h"

#define NET_RXQ 0
#define NET_TXQ 1
#define NET_QUEUE_MAX 256
/* Receive buffers held for the frame in hand: 64 KiB in 1526-byte buffers is 44 of them. */
#define NET_RX_HELD_MAX 64

struct net_dev {
	struct virtio_mmio *t;
	int tap;
	char name[IFNAMSIZ];
	uint8_t config[NET_CONFIG_LEN];

	atomic_bool active;
	bool broken; /* we called virtio_mmio_fail: nothing more until the reset */
	uint64_t features;
	bool mrg_rxbuf;

	/* worker thread only */
	bool tap_readable; /* no EAGAIN since the last edge (the tap is EPOLLET) */
	uint32_t rx_len;   /* a frame (header included) waiting in rx_frame, or 0 */
	bool rx_charged;   /* its tokens were taken already */
	struct virtq_chain *rx_held[NET_RX_HELD_MAX]; /* buffers popped for it, in order */
	unsigned rx_nheld;
	uint64_t rx_held_bytes;
	struct virtq_chain *tx_chain;
	bool tx_pending; /* tx_chain was popped and waits for tokens */
	struct rate_limiter rx_rl, tx_rl;
	uint64_t rx_dropped, tx_dropped;
	bool tx_error_logged;
	uint8_t rx_frame[NET_FRAME_MAX];
};

static void net_config_read(void *opaque, uint32_t off, uint8_t *data, uint32_t len)
{
	struct net_dev *d = opaque;
	for (uint32_t i = 0; i < len; i++)
		data[i] = (uint64_t)off + i < NET_CONFIG_LEN ? d->config[off + i] : 0;
}

static void rx_release_held(struct net_dev *d)
{
	for (unsigned i = 0; i < NET_RX_HELD_MAX; i++) {
		free(d->rx_held[i]);
		d->rx_held[i] = NULL;
	}
	d->rx_nheld = 0;
	d->rx_held_bytes = 0;
}

static int net_activate(void *opaque, uint64_t features)
{
	struct net_dev *d = opaque;
	cleanup_err vs_err_t err = NULL;
	d->features = features;
	d->mrg_rxbuf = features & (1ULL << VIRTIO_NET_F_MRG_RXBUF);
	if (tap_set_offload(d->tap, features, &err) < 0) {
		vs_warn("net %s: %s", d->name, err->msg);
		return -1;
	}
	atomic_store(&d->active, true);
	return 0;
}

static void net_reset(void *opaque)
{
	struct net_dev *d = opaque;
	atomic_store(&d->active, false);
	d->broken = false;
	/* the driver took its buffers back: nothing popped may be used or pushed again */
	d->rx_nheld = 0;
	d->rx_held_bytes = 0;
	d->rx_len = 0;
	d->rx_charged = false;
	d->tx_pending = false;
}

static int net_fail(struct net_dev *d, const char *why)
{
	d->broken = true;
	virtio_mmio_fail(d->t, why);
	return -1;
}

/* Pops receive buffers until the held ones can take `need` bytes (or the frame must go
 * into one buffer, without MRG_RXBUF). 1: enough; 0: the guest must post more; -1: broken. */
static int rx_gather(struct net_dev *d, struct virtq *q, uint32_t need)
{
	cleanup_err vs_err_t err = NULL;
	unsigned want = d->mrg_rxbuf ? NET_RX_HELD_MAX : 1;
	while (d->rx_nheld < want && (d->rx_nheld == 0 || d->rx_held_bytes < need)) {
		struct virtq_chain **slot = &d->rx_held[d->rx_nheld];
		if (!*slot && !(*slot = malloc(sizeof(**slot)))) {
			vs_warn("net %s: out of memory for a receive buffer", d->name);
			return 0;
		}
		int r = virtq_pop(q, *slot, &err);
		if (r < 0)
			return net_fail(d, err->msg);
		if (r == 0)
			return 0;
		if ((*slot)->in_len == 0)
			return net_fail(d, "receive buffer has no device-writable part");
		d->rx_held_bytes += (*slot)->in_len;
		d->rx_nheld++;
	}
	return 1;
}

/* Drops the first n held buffers (they were pushed), keeping the rest in order. */
static void rx_consume_held(struct net_dev *d, unsigned n)
{
	struct virtq_chain *done[NET_RX_HELD_MAX];
	for (unsigned i = 0; i < n; i++)
		d->rx_held_bytes -= d->rx_held[i]->in_len;
	memcpy(done, d->rx_held, n * sizeof(*done));
	memmove(d->rx_held, d->rx_held + n, (NET_RX_HELD_MAX - n) * sizeof(*done));
	memcpy(d->rx_held + NET_RX_HELD_MAX - n, done, n * sizeof(*done));
	d->rx_nheld -= n;
}

/* Puts the frame in hand into the guest. 1: delivered or dropped; 0: wait for buffers. */
static int rx_deliver(struct net_dev *d, struct virtq *q)
{
	int r = rx_gather(d, q, d->rx_len);
	if (r <= 0)
		return r;
	uint32_t used[NET_RX_HELD_MAX];
	unsigned n = d->mrg_rxbuf ? d->rx_nheld : 1;
	net_rx_hdr_fix(d->rx_frame, d->features, 1);
	unsigned k = net_copy_to_chains(d->rx_frame, d->rx_len, d->rx_held, n, used);
	if (k == 0) {
		/* buffers too small for the frame even together: drop it, keep them */
		d->rx_dropped++;
		vs_debug("net %s: dropped a %u-byte frame: receive buffers too small", d->name,
			 d->rx_len);
		return 1;
	}
	if (k > 1) {
		/* num_buffers sits in the header, which went into the first buffer(s) */
		uint8_t hdr[NET_HDR_LEN];
		memcpy(hdr, d->rx_frame, NET_HDR_LEN);
		net_rx_hdr_fix(hdr, d->features, (uint16_t)k);
		net_copy_to_chains(hdr, NET_HDR_LEN, d->rx_held, k, (uint32_t[NET_RX_HELD_MAX]){0});
	}
	for (unsigned i = 0; i < k; i++) {
		virtq_mark_written(q, d->rx_held[i], used[i]);
		virtq_push(q, d->rx_held[i]->head, used[i]);
	}
	rx_consume_held(d, k);
	return 1;
}

static void rx_process(struct net_dev *d)
{
	struct virtq *q = virtio_mmio_queue(d->t, NET_RXQ);
	bool pushed = false;
	while (atomic_load(&d->active) && !d->broken) {
		if (!d->rx_len) {
			if (!d->tap_readable)
				break;
			ssize_t n = read(d->tap, d->rx_frame, sizeof(d->rx_frame));
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno != EAGAIN)
					vs_warn("net %s: read from tap: %s", d->name,
						strerror(errno));
				d->tap_readable = false;
				break;
			}
			if (n < NET_HDR_LEN)
				continue;
			d->rx_len = (uint32_t)n;
			d->rx_charged = false;
		}
		if (!d->rx_charged) {
			uint64_t bytes = d->rx_len - NET_HDR_LEN;
			if (!rl_consume(&d->rx_rl, bytes)) {
				virtio_mmio_wake_after(d->t, rl_wait_ms(&d->rx_rl, bytes));
				break;
			}
			d->rx_charged = true;
		}
		int r = rx_deliver(d, q);
		if (r < 0)
			return;
		if (r == 0)
			break;
		pushed = true;
		d->rx_len = 0;
	}
	if (pushed)
		virtio_mmio_notify_used(d->t, NET_RXQ);
}

static void tx_send(struct net_dev *d, const struct virtq_chain *c)
{
	struct iovec iov[VIRTQ_MAX_SEGS];
	for (unsigned i = 0; i < c->n_out; i++)
		iov[i] = (struct iovec){c->out[i].host, c->out[i].len};
	ssize_t n;
	do
		n = writev(d->tap, iov, c->n_out);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		/* a frame the host refuses (a bad GSO header) or a full queue: dropped, as a
		 * wire would; the guest is not to blame enough to reset the device */
		d->tx_dropped++;
		if (!d->tx_error_logged)
			vs_warn("net %s: write to tap: %s (frames dropped; logged once)", d->name,
				strerror(errno));
		d->tx_error_logged = true;
	}
}

static void tx_process(struct net_dev *d)
{
	struct virtq *q = virtio_mmio_queue(d->t, NET_TXQ);
	cleanup_err vs_err_t err = NULL;
	bool pushed = false;
	while (atomic_load(&d->active) && !d->broken) {
		struct virtq_chain *c = d->tx_chain;
		if (!d->tx_pending) {
			int r = virtq_pop(q, c, &err);
			if (r < 0) {
				net_fail(d, err->msg);
				return;
			}
			if (r == 0)
				break;
			const char *why = net_tx_chain_invalid(c);
			if (why) {
				net_fail(d, why);
				return;
			}
			d->tx_pending = true;
		}
		uint64_t bytes = c->out_len - NET_HDR_LEN;
		if (!rl_consume(&d->tx_rl, bytes)) {
			virtio_mmio_wake_after(d->t, rl_wait_ms(&d->tx_rl, bytes));
			break;
		}
		tx_send(d, c);
		virtq_push(q, c->head, 0);
		d->tx_pending = false;
		pushed = true;
	}
	if (pushed)
		virtio_mmio_notify_used(d->t, NET_TXQ);
}

/* A pause (before a snapshot or a migration saves the rings): a frame the guest gave that
 * waits for rate-limit tokens is off its ring already; it goes now, uncharged, or the
 * saved ring would lose the buffer. A received frame waiting for tokens is in the VMM's
 * own buffer, not the guest's: a snapshot leaves it behind, as a wire drops a frame. */
static void net_quiesce(void *opaque)
{
	struct net_dev *d = opaque;
	if (!d->tx_pending || d->broken)
		return;
	tx_send(d, d->tx_chain);
	virtq_push(virtio_mmio_queue(d->t, NET_TXQ), d->tx_chain->head, 0);
	d->tx_pending = false;
	virtio_mmio_notify_used(d->t, NET_TXQ);
}

/* Either queue's kick, or a rate-limit wake-up: both directions may have work now. */
static void net_queue_notify(void *opaque, unsigned qi)
{
	struct net_dev *d = opaque;
	(void)qi;
	tx_process(d);
	rx_process(d);
}

static void net_fd_ready(void *opaque, int fd, uint32_t events)
{
	struct net_dev *d = opaque;
	(void)fd;
	(void)events;
	d->tap_readable = true;
	rx_process(d);
}

static void net_dev_free(void *opaque);

/* The snapshot's part of an interface: the MAC the guest knows (it may have been random;
 * the rest of the config space is fixed). The tap is the config's, which the loader may rename (clones). */
#define NET_SNAP_VERSION 1

static int net_save(void *opaque, void **blob, size_t *len, vs_err_t *err)
{
	struct net_dev *d = opaque;
	uint32_t version = NET_SNAP_VERSION;
	uint8_t *b = malloc(sizeof(version) + 6);
	if (!b)
		return vs_err(err, ENOMEM, "net %s", d->name);
	memcpy(b, &version, sizeof(version));
	memcpy(b + sizeof(version), d->config, 6);
	*blob = b;
	*len = sizeof(version) + 6;
	return 0;
}

static int net_restore(void *opaque, const void *blob, size_t len, vs_err_t *err)
{
	struct net_dev *d = opaque;
	uint32_t version;
	if (len < sizeof(version))
		return vs_err(err, 0, "net %s: state of %zu bytes, truncated", d->name, len);
	memcpy(&version, blob, sizeof(version));
	if (version != NET_SNAP_VERSION)
		return vs_err(err, 0, "net %s: format version %u (this vessel reads %u)", d->name,
			      version, NET_SNAP_VERSION);
	if (len != sizeof(version) + 6)
		return vs_err(err, 0, "net %s: state of %zu bytes (expected %zu)", d->name, len,
			      sizeof(version) + 6);
	const uint8_t *mac = (const uint8_t *)blob + sizeof(version);
	if (mac[0] & 1)
		return vs_err(err, 0, "net %s: mac %02x:..: a multicast address", d->name, mac[0]);
	net_config_bytes(mac, d->config);
	return 0;
}

/* PATCH /network-interfaces/{id}: the limiters are replaced with the worker stopped, which
 * then weighs a frame that waited for tokens against the new ones. */
static int net_apply(void *opaque, void *arg, vs_err_t *err)
{
	struct net_dev *d = opaque;
	const struct net_patch *p = arg;
	(void)err;
	if (p->has_rx)
		rl_patch_apply(&d->rx_rl, &p->rx);
	if (p->has_tx)
		rl_patch_apply(&d->tx_rl, &p->tx);
	return 0;
}

static int net_update(void *state, json_t *body, vs_err_t *err)
{
	struct net_patch p;
	if (net_patch_from_json(body, &p, err) < 0)
		return -1;
	return virtio_mmio_reconfigure(state, net_apply, &p, err);
}

static const struct virtio_device_ops net_ops = {
    .name = "net",
    .device_id = VIRTIO_ID_NET,
    .features = NET_FEATURES,
    .num_queues = 2,
    .queue_max = NET_QUEUE_MAX,
    .config_read = net_config_read,
    .activate = net_activate,
    .queue_notify = net_queue_notify,
    .fd_ready = net_fd_ready,
    .quiesce = net_quiesce,
    .reset = net_reset,
    .save = net_save,
    .restore = net_restore,
    .destroy = net_dev_free,
};

static void net_dev_free(void *opaque)
{
	struct net_dev *d = opaque;
	if (!d)
		return;
	if (d->tap >= 0)
		close(d->tap);
	rx_release_held(d);
	free(d->tx_chain);
	free(d);
}

static void *net_create(struct vm *vm, const void *config, vs_err_t *err)
{
	struct net_spec s = *(const struct net_spec *)config;
	if (!s.has_mac)
		net_random_mac(s.mac);

	struct net_dev *d = calloc(1, sizeof(*d));
	if (!d) {
		vs_err(err, errno, "network interface");
		return NULL;
	}
	d->tap = -1;
	memcpy(d->name, s.tap, sizeof(d->name));
	net_config_bytes(s.mac, d->config);
	d->rx_rl = s.rl;
	d->tx_rl = s.has_tx_rl ? s.tx_rl : s.rl;
	d->tx_chain = malloc(sizeof(*d->tx_chain));
	bool created;
	if (!d->tx_chain) {
		vs_err(err, errno, "network interface");
		goto fail;
	}
	d->tap = tap_open(s.tap, NET_HDR_LEN, &created, err);
	if (d->tap < 0)
		goto fail;

	if (virtio_mmio_add(vm, &net_ops, d, &d->t, err) < 0)
		goto fail;
	/* from here the transport owns d. Edge-triggered: a frame left in the tap while the
	 * guest has no buffers must not spin the worker; the guest's next kick resumes. */
	if (virtio_mmio_add_fd(d->t, d->tap, EPOLLIN | EPOLLET, err) < 0) {
		virtio_mmio_remove(d->t);
		return NULL;
	}
	vs_debug("net: tap %s (%s) mac %02x:%02x:%02x:%02x:%02x:%02x", s.tap,
		 created ? "created" : "existing", s.mac[0], s.mac[1], s.mac[2], s.mac[3], s.mac[4],
		 s.mac[5]);
	return d->t;
fail:
	net_dev_free(d);
	return NULL;
}

static int net_from_cli(const char *spec, void *config, vs_err_t *err)
{
	return net_spec_parse(spec, config, err);
}

static int net_from_json(json_t *obj, void *config, vs_err_t *err)
{
	return net_spec_from_json(obj, config, err);
}

const struct device_kind virtio_net_kind = {
    .name = "network-interface",
    .cli_flag = "--net",
    .cli_value = true,
    .api_path = "/network-interfaces/{iface_id}",
    .json_key = "network-interfaces",
    .json_array = true,
    .virtio = true,
    .config_size = sizeof(struct net_spec),
    .from_cli = net_from_cli,
    .from_json = net_from_json,
    .create = net_create,
    .destroy = virtio_mmio_destroy,
    .save = virtio_mmio_save,
    .restore = virtio_mmio_restore,
    .update = net_update,
};
