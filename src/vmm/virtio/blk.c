/* virtio-blk device: takes requests off its one queue, checks them (blk_req.c), rate-limits
 * them, and hands them to io_uring in batches (blk_io.c). Everything here runs on the
 * device's worker thread. */
#include "vmm/virtio/blk.h"

#include <endian.h>
#include <errno.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>

#include "base/log.h"
#include "base/util.h"
#include "vmm/virtio/blk_io.h"
#include "vmm/virtio/blk_req.h"
#include "vmm/virtio/blk_spec.h"
#include "vmm/virtio/virtio.h"

#define BLK_QUEUE_MAX 256
#define BLK_IO_DEPTH 256
#define BLK_SUBMIT_BYTES (256u << 10)

/* One request between the avail ring and the used ring; slots are indexed by head. */
struct blk_slot {
	struct blk_req req;
	bool busy;
	unsigned pending; /* SQEs not yet completed */
	int error;	  /* first -errno among them */
	uint64_t done;	  /* bytes an IN/OUT transferred */
};

struct blk_dev {
	struct virtio_mmio *t;
	struct blk_spec spec;
	struct blk_geometry geom;
	struct blk_io io;
	struct virtio_blk_config cfg; /* little-endian, as the guest reads it */
	struct virtq_chain chain;
	struct blk_slot slots[BLK_QUEUE_MAX];
	struct blk_slot *stalled; /* parsed, waiting for rate-limit tokens */
	bool broken;		  /* failed until the driver resets */
	unsigned used;		  /* pushes since the last interrupt decision */
	uint64_t unsubmitted;	  /* data bytes queued since the last submit */
	bool io_error_logged;
};

static void fail(struct blk_dev *d, vs_err_t *err)
{
	d->broken = true;
	virtio_mmio_fail(d->t, *err ? (*err)->msg : "broken request");
	vs_err_free(err);
}

static void complete(struct blk_dev *d, struct blk_slot *s, uint8_t status, uint32_t data)
{
	*s->req.status = status;
	s->busy = false;
	if (d->broken)
		return;
	struct virtq *q = virtio_mmio_queue(d->t, 0);
	/* what we wrote into guest RAM (dirty tracking): data read from the disk, the status */
	if (s->req.type != VIRTIO_BLK_T_OUT)
		for (unsigned i = 0; i < s->req.niov; i++)
			virtq_mark_host(q, s->req.iov[i].iov_base, s->req.iov[i].iov_len);
	virtq_mark_host(q, s->req.status, 1);
	virtq_push(q, s->req.head, data < UINT32_MAX ? data + 1 : data);
	d->used++;
}

static void flush_used(struct blk_dev *d)
{
	if (d->used && !d->broken)
		virtio_mmio_notify_used(d->t, 0);
	d->used = 0;
}

static void answer_get_id(struct blk_dev *d, struct blk_slot *s)
{
	/* the id is not NUL-terminated when it fills all 20 bytes, as the spec says */
	uint8_t id[VIRTIO_BLK_ID_BYTES] = {0};
	memcpy(id, d->spec.id, strnlen(d->spec.id, sizeof(id)));
	uint64_t off = 0;
	for (unsigned i = 0; i < s->req.niov; i++) {
		memcpy(s->req.iov[i].iov_base, id + off, s->req.iov[i].iov_len);
		off += s->req.iov[i].iov_len;
	}
	complete(d, s, VIRTIO_BLK_S_OK, (uint32_t)s->req.len);
}

static void io_done(void *arg, void *tag, int res)
{
	struct blk_dev *d = arg;
	struct blk_slot *s = tag;
	struct blk_req *r = &s->req;
	if (res < 0 && !s->error)
		s->error = res;
	if (res > 0)
		s->done += (uint64_t)res;
	if (--s->pending)
		return;
	int e = s->error;
	if ((r->type == VIRTIO_BLK_T_IN || r->type == VIRTIO_BLK_T_OUT) && !e && s->done < r->len)
		e = blk_io_finish_rw(&d->io, r, s->done);
	if (r->type == VIRTIO_BLK_T_WRITE_ZEROES && e == -EOPNOTSUPP) {
		/* no FALLOC_FL_ZERO_RANGE here (tmpfs, for one): zero range by range */
		e = 0;
		for (unsigned i = 0; i < r->nranges && !e; i++)
			e = blk_io_zero_sync(&d->io, &r->ranges[i]);
	}
	if (e && !d->io_error_logged) { /* the guest sees IOERR each time; the log once */
		vs_warn("virtio-blk %s: request type %u at byte %llu: %s (answered IOERR)",
			d->spec.path, r->type, (unsigned long long)r->offset, strerror(-e));
		d->io_error_logged = true;
	}
	/* the used length is 32 bits; a chain can carry more (many 4 GiB buffers) */
	uint32_t data = r->type == VIRTIO_BLK_T_IN && !e
			    ? (r->len < UINT32_MAX ? (uint32_t)r->len : UINT32_MAX - 1)
			    : 0;
	complete(d, s, e ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK, data);
}

/* Queues the I/O of the request in s for io_uring (the next submit sends it). */
static void issue(struct blk_dev *d, struct blk_slot *s)
{
	s->pending = blk_io_sqes(&s->req);
	s->error = 0;
	s->done = 0;
	blk_io_queue(&d->io, &s->req, s);
	d->unsubmitted += s->req.len;
}

/* Starts the request in s, or parks it when the rate limiter says wait. */
static bool start(struct blk_dev *d, struct blk_slot *s)
{
	struct blk_req *r = &s->req;
	if (r->answer != BLK_ANSWER_IO) {
		complete(d, s, (uint8_t)r->answer, 0);
		return true;
	}
	if (r->type == VIRTIO_BLK_T_GET_ID) {
		answer_get_id(d, s);
		return true;
	}
	if (!rl_consume(&d->spec.rl, blk_req_bytes(r))) {
		d->stalled = s;
		virtio_mmio_wake_after(d->t, rl_wait_ms(&d->spec.rl, blk_req_bytes(r)));
		return false;
	}
	issue(d, s);
	return true;
}

/* Submits what is queued and answers what io_uring finished inline (buffered I/O that hit
 * the page cache), so the guest can work on those while the next batch is copied. */
static void submit(struct blk_dev *d)
{
	vs_err_t err = NULL;
	d->unsubmitted = 0;
	if (blk_io_submit(&d->io, &err) < 0) {
		vs_warn("virtio-blk %s: %s", d->spec.path, err->msg);
		vs_err_free(&err);
	}
	blk_io_reap(&d->io, io_done, d);
	flush_used(d);
}

static void process(struct blk_dev *d)
{
	if (d->broken)
		return;
	struct virtq *q = virtio_mmio_queue(d->t, 0);
	vs_err_t err = NULL;
	if (d->stalled) {
		if (!blk_io_room(&d->io, blk_io_sqes(&d->stalled->req)))
			goto out;
		struct blk_slot *s = d->stalled;
		d->stalled = NULL;
		if (!start(d, s))
			goto out;
	}
	/* room for the largest request before taking one off the ring */
	while (blk_io_room(&d->io, BLK_MAX_RANGES)) {
		int r = virtq_pop(q, &d->chain, &err);
		if (r == 0)
			break;
		if (r < 0) {
			fail(d, &err);
			return;
		}
		if (d->chain.head >= BLK_QUEUE_MAX || d->slots[d->chain.head].busy) {
			vs_err(&err, 0, "request head %u is already in flight", d->chain.head);
			fail(d, &err);
			return;
		}
		struct blk_slot *s = &d->slots[d->chain.head];
		if (blk_req_parse(&d->chain, &d->geom, &s->req, &err) < 0) {
			fail(d, &err);
			return;
		}
		s->busy = true;
		if (!start(d, s))
			break;
		/* Large transfers go at once: small ones share a syscall, big ones gain
		 * more from the guest seeing the first completions early. */
		if (d->unsubmitted >= BLK_SUBMIT_BYTES)
			submit(d);
	}
out:
	submit(d);
}

static void blk_queue_notify(void *dev, unsigned qi)
{
	(void)qi;
	process(dev);
}

static void blk_fd_ready(void *dev, int fd, uint32_t events)
{
	struct blk_dev *d = dev;
	(void)events;
	if (fd == d->io.efd)
		blk_io_reap(&d->io, io_done, d);
	flush_used(d);
	process(d);
}

/* A pause: every request io_uring has is answered before the worker parks. So is one
 * held for rate-limit tokens: it is off the ring already, so a snapshot or a migration
 * taken now would lose it and the guest would wait for it for ever. It goes uncharged
 * (one request a pause escapes the limit). */
static void blk_quiesce(void *dev)
{
	struct blk_dev *d = dev;
	blk_io_wait_all(&d->io, io_done, d);
	if (d->stalled && !d->broken) {
		struct blk_slot *s = d->stalled;
		d->stalled = NULL;
		issue(d, s);
		submit(d);
		blk_io_wait_all(&d->io, io_done, d);
	}
	flush_used(d);
}

static void blk_config_read(void *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	struct blk_dev *d = dev;
	memset(data, 0, len);
	if (off < sizeof(d->cfg))
		memcpy(data, (uint8_t *)&d->cfg + off,
		       len < sizeof(d->cfg) - off ? len : sizeof(d->cfg) - off);
}

static int blk_activate(void *dev, uint64_t features)
{
	(void)dev;
	(void)features;
	return 0;
}

static void blk_reset(void *dev)
{
	struct blk_dev *d = dev;
	/* in-flight I/O still points into guest RAM: let it land, then forget it */
	blk_io_drain(&d->io);
	for (unsigned i = 0; i < BLK_QUEUE_MAX; i++)
		d->slots[i].busy = false;
	d->stalled = NULL;
	d->broken = false;
	d->used = 0;
}

static void blk_free(struct blk_dev *d)
{
	blk_io_close(&d->io);
	blk_spec_free(&d->spec);
	free(d);
}

static void blk_destroy(void *dev)
{
	blk_free(dev);
}

static void fill_config(struct blk_dev *d)
{
	struct virtio_blk_config *c = &d->cfg;
	c->capacity = htole64(d->geom.sectors);
	c->seg_max = htole32(BLK_SEG_MAX);
	c->blk_size = htole32(BLK_SECTOR_SIZE);
	c->num_queues = htole16(1);
	c->max_discard_sectors = htole32(BLK_MAX_RANGE_SECTORS);
	c->max_discard_seg = htole32(BLK_MAX_RANGES);
	c->discard_sector_alignment = htole32(1);
	c->max_write_zeroes_sectors = htole32(BLK_MAX_RANGE_SECTORS);
	c->max_write_zeroes_seg = htole32(BLK_MAX_RANGES);
	c->write_zeroes_may_unmap = 1;
}

/* Firecracker's default: the backing file's identity, so it is stable across boots. */
static void default_id(struct blk_dev *d)
{
	struct stat st;
	if (fstat(d->io.fd, &st) == 0)
		snprintf(d->spec.id, sizeof(d->spec.id), "%llx%llx%llx",
			 (unsigned long long)st.st_dev, (unsigned long long)st.st_rdev,
			 (unsigned long long)st.st_ino);
}

/* The snapshot's part of a disk: its backend's identity, which the load must match (a
 * guest that cached blocks of one file must not go on with another). */
#define BLK_SNAP_VERSION 1

static int blk_save(void *dev, void **blob, size_t *len, vs_err_t *err)
{
	struct blk_dev *d = dev;
	uint32_t version = BLK_SNAP_VERSION;
	uint64_t sectors = d->geom.sectors;
	uint8_t ro = d->spec.ro;
	size_t plen = strlen(d->spec.path);
	if (plen > UINT16_MAX)
		return vs_err(err, 0, "virtio-blk %s: path too long to save", d->spec.path);
	uint16_t pl = (uint16_t)plen;
	size_t n = sizeof(version) + sizeof(sectors) + sizeof(ro) + sizeof(pl) + plen;
	uint8_t *b = malloc(n), *p = b;
	if (!b)
		return vs_err(err, ENOMEM, "virtio-blk %s", d->spec.path);
	memcpy(p, &version, sizeof(version)), p += sizeof(version);
	memcpy(p, &sectors, sizeof(sectors)), p += sizeof(sectors);
	memcpy(p, &ro, sizeof(ro)), p += sizeof(ro);
	memcpy(p, &pl, sizeof(pl)), p += sizeof(pl);
	memcpy(p, d->spec.path, plen);
	*blob = b;
	*len = n;
	return 0;
}

static int blk_restore(void *dev, const void *blob, size_t len, vs_err_t *err)
{
	const struct blk_dev *d = dev;
	const uint8_t *p = blob;
	uint32_t version;
	uint64_t sectors;
	uint8_t ro;
	uint16_t pl;
	size_t head = sizeof(version) + sizeof(sectors) + sizeof(ro) + sizeof(pl);
	if (len < sizeof(version))
		return vs_err(err, 0, "drive %s: state of %zu bytes, truncated", d->spec.path, len);
	memcpy(&version, p, sizeof(version));
	if (version != BLK_SNAP_VERSION)
		return vs_err(err, 0, "drive %s: format version %u (this vessel reads %u)",
			      d->spec.path, version, BLK_SNAP_VERSION);
	if (len < head)
		return vs_err(err, 0, "drive %s: state of %zu bytes, truncated", d->spec.path, len);
	p += sizeof(version);
	memcpy(&sectors, p, sizeof(sectors)), p += sizeof(sectors);
	memcpy(&ro, p, sizeof(ro)), p += sizeof(ro);
	memcpy(&pl, p, sizeof(pl)), p += sizeof(pl);
	if (len != head + pl)
		return vs_err(err, 0, "drive %s: path of %u bytes in %zu bytes of state",
			      d->spec.path, pl, len);
	if (pl != strlen(d->spec.path) || memcmp(p, d->spec.path, pl) != 0)
		return vs_err(err, 0, "drive %s: the snapshot's drive was %.*s", d->spec.path,
			      (int)pl, (const char *)p);
	if (sectors != d->geom.sectors)
		return vs_err(err, 0, "drive %s: size %llu sectors, the snapshot's was %llu",
			      d->spec.path, (unsigned long long)d->geom.sectors,
			      (unsigned long long)sectors);
	if (ro > 1 || ro != d->spec.ro)
		return vs_err(err, 0, "drive %s: read-only %u, the snapshot's was %u",
			      d->spec.path, d->spec.ro, ro);
	return 0;
}

/* PATCH /drives/{id}: the new file is opened before the worker is stopped (a file that
 * can't be opened changes nothing), then swapped in with nothing in flight. */
struct blk_swap {
	const struct blk_patch *p;
	struct blk_io io; /* the new file (fd -1: none) */
	char *path;
};

static int blk_apply(void *dev, void *arg, vs_err_t *err)
{
	struct blk_dev *d = dev;
	struct blk_swap *w = arg;
	(void)err;
	if (w->p->has_rl)
		rl_patch_apply(&d->spec.rl, &w->p->rl);
	if (!w->p->path)
		return 0;
	blk_io_swap_file(&d->io, &w->io);
	free(d->spec.path);
	d->spec.path = w->path;
	w->path = NULL;
	d->geom.sectors = d->io.size >> BLK_SECTOR_SHIFT;
	d->cfg.capacity = htole64(d->geom.sectors);
	if (!d->spec.has_id)
		default_id(d); /* Firecracker's id follows the file */
	d->io_error_logged = false;
	/* a request parsed against the old file that the new, smaller one can't hold */
	if (d->stalled && !d->broken && !blk_req_within(&d->stalled->req, &d->geom)) {
		complete(d, d->stalled, VIRTIO_BLK_S_IOERR, 0);
		d->stalled = NULL;
		flush_used(d);
	}
	vs_info("virtio-blk: the drive is now %s, %llu sectors", d->spec.path,
		(unsigned long long)d->geom.sectors);
	return 1;
}

static int blk_update(void *state, json_t *body, vs_err_t *err)
{
	struct virtio_mmio *t = state;
	const struct blk_dev *d = virtio_mmio_device(t);
	struct blk_patch p;
	if (blk_patch_from_json(body, &p, err) < 0)
		return -1;
	struct blk_swap w = {.p = &p, .io = {.fd = -1, .efd = -1}};
	if (p.path) {
		/* ro and direct are the drive's for good: read here, never changed */
		if (blk_io_open(&w.io, p.path, d->spec.ro, d->spec.direct, err) < 0)
			return vs_err_wrap(err, "path_on_host");
		w.path = strdup(p.path);
		if (!w.path) {
			blk_io_close(&w.io);
			return vs_err(err, ENOMEM, "path_on_host");
		}
	}
	int r = virtio_mmio_reconfigure(t, blk_apply, &w, err);
	blk_io_close(&w.io);
	free(w.path);
	return r;
}

static const struct virtio_device_ops blk_ops_rw = {
    .name = "blk",
    .device_id = VIRTIO_ID_BLOCK,
    .features = 1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_BLK_SIZE |
		1ull << VIRTIO_BLK_F_FLUSH | 1ull << VIRTIO_BLK_F_DISCARD |
		1ull << VIRTIO_BLK_F_WRITE_ZEROES,
    .num_queues = 1,
    .queue_max = BLK_QUEUE_MAX,
    .config_read = blk_config_read,
    .activate = blk_activate,
    .queue_notify = blk_queue_notify,
    .fd_ready = blk_fd_ready,
    .reset = blk_reset,
    .quiesce = blk_quiesce,
    .save = blk_save,
    .restore = blk_restore,
    .destroy = blk_destroy,
};

static const struct virtio_device_ops blk_ops_ro = {
    .name = "blk",
    .device_id = VIRTIO_ID_BLOCK,
    .features = 1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_BLK_SIZE |
		1ull << VIRTIO_BLK_F_FLUSH | 1ull << VIRTIO_BLK_F_RO,
    .num_queues = 1,
    .queue_max = BLK_QUEUE_MAX,
    .config_read = blk_config_read,
    .activate = blk_activate,
    .queue_notify = blk_queue_notify,
    .fd_ready = blk_fd_ready,
    .reset = blk_reset,
    .quiesce = blk_quiesce,
    .save = blk_save,
    .restore = blk_restore,
    .destroy = blk_destroy,
};

static int blk_setup(struct blk_dev *d, const struct blk_spec *spec, vs_err_t *err)
{
	d->spec = *spec;
	d->spec.path = strdup(spec->path);
	if (!d->spec.path)
		return vs_err(err, ENOMEM, "disk");
	if (blk_io_open(&d->io, d->spec.path, d->spec.ro, d->spec.direct, err) < 0)
		return -1;
	d->geom = (struct blk_geometry){
	    .sectors = d->io.size >> BLK_SECTOR_SHIFT,
	    .ro = d->spec.ro,
	    .discard = !d->spec.ro,
	    .write_zeroes = !d->spec.ro,
	};
	if (!d->spec.has_id)
		default_id(d);
	fill_config(d);
	return blk_io_start(&d->io, BLK_IO_DEPTH, err);
}

/* Opens the disk and registers the device; returns its transport. */
static void *blk_create(struct vm *vm, const void *config, vs_err_t *err)
{
	const struct blk_spec *spec = config;
	struct blk_dev *d = calloc(1, sizeof(*d));
	if (!d) {
		vs_err(err, ENOMEM, "disk");
		return NULL;
	}
	d->io.fd = d->io.efd = -1;
	if (blk_setup(d, spec, err) < 0 ||
	    virtio_mmio_add(vm, d->spec.ro ? &blk_ops_ro : &blk_ops_rw, d, &d->t, err) < 0) {
		blk_free(d);
		return NULL;
	}
	/* from here on the transport owns d */
	if (virtio_mmio_add_fd(d->t, d->io.efd, EPOLLIN, err) < 0) {
		virtio_mmio_remove(d->t);
		return NULL;
	}
	vs_debug("virtio-blk %s: %llu sectors%s", d->spec.path, (unsigned long long)d->geom.sectors,
		 d->spec.ro ? ", read-only" : "");
	return d->t;
}

static int blk_from_cli(const char *spec, void *config, vs_err_t *err)
{
	return blk_spec_parse(spec, config, err);
}

static int blk_from_json(json_t *obj, void *config, vs_err_t *err)
{
	return blk_spec_from_json(obj, config, err);
}

static void blk_config_free(void *config)
{
	blk_spec_free(config);
}

const struct device_kind virtio_blk_kind = {
    .name = "drive",
    .cli_flag = "--disk",
    .cli_value = true,
    .api_path = "/drives/{drive_id}",
    .json_key = "drives",
    .json_array = true,
    .virtio = true,
    .config_size = sizeof(struct blk_spec),
    .from_cli = blk_from_cli,
    .from_json = blk_from_json,
    .config_free = blk_config_free,
    .create = blk_create,
    .destroy = virtio_mmio_destroy,
    .save = virtio_mmio_save,
    .restore = virtio_mmio_restore,
    .update = blk_update,
};
