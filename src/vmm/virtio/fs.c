/* virtio-fs (virtio 1.2, 5.11) as a vhost-user front-end: the FUSE requests on the
 * device's queues are served by a back-end process (Debian's /usr/lib/qemu/virtiofsd),
 * which maps guest RAM from the memfd vessel hands it and reads the rings itself. vessel
 * keeps the virtio-mmio transport (registers, config space, the interrupt): the guest's
 * kicks go from KVM's ioeventfd straight to the back-end, and its "call" eventfds come
 * back to the device's worker, which sets InterruptStatus before raising the line (a
 * virtio-mmio driver reads it, so an irqfd straight to the GSI would look spurious).
 *
 * VHOST_USER_F_PROTOCOL_FEATURES is never negotiated: the rings then run from their kick
 * and no SET_* is answered, which keeps the exchange to what every back-end must do.
 * Nothing of the back-end's state can be saved, so the kind has no save/restore and a
 * snapshot or migration of a VM with a shared directory is refused (device.h). */
#include "vmm/virtio/fs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/log.h"
#include "vmm/config.h"
#include "vmm/virtio/fs_spec.h"
#include "vmm/virtio/vhost_user_io.h"
#include "vmm/virtio/virtio.h"
#include "vmm/vm.h"

#define VIRTIO_ID_FS 26
#define FS_QUEUES 2 /* hiprio, then one request queue */
#define FS_QUEUE_MAX 256
#define FS_CONFIG_SIZE (FS_TAG_MAX + 4)

/* the ring features the transport offers on its own; the back-end must serve them too */
#define FS_RING_FEATURES                                                                           \
	((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_RING_EVENT_IDX) |                        \
	 (1ULL << VIRTIO_F_RING_INDIRECT_DESC))

struct fs {
	struct virtio_mmio *t;
	struct vm *vm;
	char name[64]; /* "fs `TAG`" for messages */
	uint8_t config[FS_CONFIG_SIZE];
	int sock;
	int call_fd[FS_QUEUES];
	bool started[FS_QUEUES]; /* the back-end was given the ring (GET_VRING_BASE on reset) */
};

static int send_msg(struct fs *f, const uint8_t *msg, size_t len, const int *fds, unsigned nfds,
		    vs_err_t *err)
{
	return vhu_send(f->sock, msg, len, fds, nfds, err);
}

static void fs_config_read(void *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	struct fs *f = dev;
	memset(data, 0, len);
	if (off < FS_CONFIG_SIZE)
		memcpy(data, f->config + off,
		       len < FS_CONFIG_SIZE - off ? len : FS_CONFIG_SIZE - off);
}

/* One ring to the back-end, in QEMU's order (size, base, addresses, then the fds: the call
 * before the kick, since the kick starts the back-end's thread on the ring). */
static int start_ring(struct fs *f, unsigned qi, vs_err_t *err)
{
	const struct virtq *q = virtio_mmio_queue(f->t, qi);
	const void *desc, *avail, *used;
	virtq_rings(q, &desc, &avail, &used);
	struct vhu_vring_addr a = {
	    .index = qi,
	    .desc = (uint64_t)(uintptr_t)desc,
	    .used = (uint64_t)(uintptr_t)used,
	    .avail = (uint64_t)(uintptr_t)avail,
	};
	int kick = virtio_mmio_doorbell_fd(f->t, qi);
	uint8_t m[VHU_MAX_MSG];
	size_t n;
	n = vhu_encode_state(m, VHU_SET_VRING_NUM, qi, q->size);
	if (send_msg(f, m, n, NULL, 0, err) < 0)
		return -1;
	/* the driver starts every ring at 0, after a reset too */
	n = vhu_encode_state(m, VHU_SET_VRING_BASE, qi, 0);
	if (send_msg(f, m, n, NULL, 0, err) < 0)
		return -1;
	n = vhu_encode_addr(m, &a);
	if (send_msg(f, m, n, NULL, 0, err) < 0)
		return -1;
	n = vhu_encode_fd(m, VHU_SET_VRING_CALL, qi);
	if (send_msg(f, m, n, &f->call_fd[qi], 1, err) < 0)
		return -1;
	n = vhu_encode_fd(m, VHU_SET_VRING_KICK, qi);
	if (send_msg(f, m, n, &kick, 1, err) < 0)
		return -1;
	f->started[qi] = true;
	return 0;
}

/* DRIVER_OK (vCPU thread, the transport's work_lock held): the rings were checked by the
 * transport (virtq_init: sized, aligned, wholly in guest RAM), so their host addresses are
 * safe to hand over. */
static int fs_activate(void *dev, uint64_t features)
{
	struct fs *f = dev;
	vs_err_t err = NULL;
	uint8_t m[VHU_MAX_MSG];
	struct vhu_region r[2];
	unsigned nr = vhu_mem_regions(&f->vm->mem, r);
	int fds[2] = {f->vm->mem.fd, f->vm->mem.fd};
	size_t n = vhu_encode_u64(m, VHU_SET_FEATURES, features);
	if (send_msg(f, m, n, NULL, 0, &err) < 0)
		goto fail;
	n = vhu_encode_mem(m, r, nr);
	if (send_msg(f, m, n, fds, nr, &err) < 0)
		goto fail;
	for (unsigned qi = 0; qi < FS_QUEUES; qi++) {
		if (!virtio_mmio_queue(f->t, qi)->ready)
			continue; /* a ring the driver did not set up stays off */
		if (start_ring(f, qi, &err) < 0) {
			vs_err_wrap(&err, "queue %u", qi);
			goto fail;
		}
	}
	vs_debug("%s: started, features 0x%llx", f->name, (unsigned long long)features);
	return 0;
fail:
	vs_warn("%s: virtiofsd: %s", f->name, err->msg);
	vs_err_free(&err);
	return -1;
}

/* The driver reset the device (vCPU thread): the back-end stops each ring it was given and
 * says where it stopped; a reply that is not that is logged and the ring is forgotten all
 * the same (the next activation starts every ring afresh). */
static void fs_reset(void *dev)
{
	struct fs *f = dev;
	for (unsigned qi = 0; qi < FS_QUEUES; qi++) {
		if (!f->started[qi])
			continue;
		f->started[qi] = false;
		vs_err_t err = NULL;
		uint8_t m[VHU_MAX_MSG];
		size_t n = vhu_encode_state(m, VHU_GET_VRING_BASE, qi, 0);
		uint16_t base = 0;
		ssize_t got;
		if (send_msg(f, m, n, NULL, 0, &err) < 0 ||
		    (got = vhu_recv_reply(f->sock, VHU_GET_VRING_BASE, m, &err)) < 0 ||
		    vhu_parse_vring_base(m, (size_t)got, qi, &base, &err) < 0) {
			vs_warn("%s: stopping queue %u: %s", f->name, qi, err->msg);
			vs_err_free(&err);
			continue;
		}
		vs_debug("%s: queue %u stopped at %u", f->name, qi, base);
	}
	uint64_t v;
	for (unsigned qi = 0; qi < FS_QUEUES; qi++)
		while (read(f->call_fd[qi], &v, sizeof(v)) > 0)
			;
}

/* Worker thread: a call eventfd (the back-end used buffers and wants the driver told), or
 * the socket hanging up (virtiofsd went away: no request will be answered again). */
static void fs_fd_ready(void *dev, int fd, uint32_t events)
{
	struct fs *f = dev;
	if (fd == f->sock) {
		if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			virtio_mmio_fail(f->t, "virtiofsd closed the vhost-user connection");
		return;
	}
	uint64_t v;
	if (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
		virtio_mmio_raise_used(f->t);
}

static void fs_free(void *dev)
{
	struct fs *f = dev;
	if (!f)
		return;
	/* virtiofsd exits when its front-end goes */
	if (f->sock >= 0)
		close(f->sock);
	for (unsigned qi = 0; qi < FS_QUEUES; qi++)
		if (f->call_fd[qi] >= 0)
			close(f->call_fd[qi]);
	free(f);
}

static const struct virtio_device_ops fs_ops = {
    .name = "fs",
    .device_id = VIRTIO_ID_FS,
    .num_queues = FS_QUEUES,
    .queue_max = FS_QUEUE_MAX,
    .backend_queues = true,
    .config_read = fs_config_read,
    .activate = fs_activate,
    .fd_ready = fs_fd_ready,
    .reset = fs_reset,
    .destroy = fs_free,
};

/* Main thread, before the guest runs: the connection, and what the back-end can do. */
static int handshake(struct fs *f, const char *path, vs_err_t *err)
{
	f->sock = vhu_connect(path, err);
	if (f->sock < 0) {
		int e = (*err)->errnum;
		vs_err_free(err);
		vs_err(err, 0, "cannot connect to %s: %s (is virtiofsd running? %s)", path,
		       strerror(e), FS_VIRTIOFSD);
		(*err)->errnum = e;
		return -1;
	}
	uint8_t m[VHU_MAX_MSG];
	uint64_t features;
	ssize_t got;
	size_t n = vhu_encode(m, VHU_GET_FEATURES);
	if (vhu_send(f->sock, m, n, NULL, 0, err) < 0 ||
	    (got = vhu_recv_reply(f->sock, VHU_GET_FEATURES, m, err)) < 0 ||
	    vhu_parse_features(m, (size_t)got, &features, err) < 0)
		return vs_err_wrap(err, "vhost-user back-end at %s", path);
	if ((features & FS_RING_FEATURES) != FS_RING_FEATURES)
		return vs_err(err, 0,
			      "vhost-user back-end at %s: features 0x%llx lack VERSION_1, "
			      "EVENT_IDX or INDIRECT_DESC",
			      path, (unsigned long long)features);
	n = vhu_encode(m, VHU_SET_OWNER);
	if (vhu_send(f->sock, m, n, NULL, 0, err) < 0)
		return vs_err_wrap(err, "vhost-user back-end at %s", path);
	return 0;
}

static void *fs_create(struct vm *vm, const void *config, vs_err_t *err)
{
	const struct fs_spec *spec = config;
	/* the guest mounts by tag: a second share of the same tag could never be mounted */
	for (const struct vm_device *d = vm->devices; d; d = d->next) {
		const struct fs *other =
		    d->kind == &virtio_fs_kind ? virtio_mmio_device(d->state) : NULL;
		if (other && strncmp((const char *)other->config, spec->tag, FS_TAG_MAX) == 0) {
			vs_err(err, 0, "tag `%s`: another --fs has it", spec->tag);
			return NULL;
		}
	}
	if (!vm->mem.shared || vm->mem.fd < 0) {
		/* the builder shares RAM for a kind with shares_ram; this is RAM from elsewhere */
		vs_err(err, 0, "guest RAM is not in a shared memfd, which virtiofsd must map");
		return NULL;
	}
	struct fs *f = calloc(1, sizeof(*f));
	if (!f) {
		vs_err(err, ENOMEM, "virtio-fs");
		return NULL;
	}
	f->vm = vm;
	f->sock = -1;
	snprintf(f->name, sizeof(f->name), "fs `%s`", spec->tag);
	memcpy(f->config, spec->tag, strlen(spec->tag)); /* NUL-padded: calloc */
	uint32_t nreq = 1;				 /* num_request_queues, le32 */
	memcpy(f->config + FS_TAG_MAX, &nreq, 4);
	for (unsigned qi = 0; qi < FS_QUEUES; qi++) {
		f->call_fd[qi] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (f->call_fd[qi] < 0) {
			vs_err(err, errno, "virtio-fs: eventfd");
			fs_free(f);
			return NULL;
		}
	}
	if (handshake(f, spec->socket, err) < 0) {
		fs_free(f);
		return NULL;
	}
	if (virtio_mmio_add(vm, &fs_ops, f, &f->t, err) < 0) {
		fs_free(f);
		return NULL;
	}
	/* from here the transport owns f */
	for (unsigned qi = 0; qi < FS_QUEUES; qi++)
		if (virtio_mmio_add_fd(f->t, f->call_fd[qi], EPOLLIN, err) < 0)
			goto fail;
	if (virtio_mmio_add_fd(f->t, f->sock, EPOLLRDHUP, err) < 0)
		goto fail;
	return f->t;
fail:
	virtio_mmio_remove(f->t);
	return NULL;
}

static int fs_from_cli(const char *spec, void *config, vs_err_t *err)
{
	return fs_spec_parse(spec, config, err);
}

static int fs_from_json(json_t *obj, void *config, vs_err_t *err)
{
	return fs_spec_from_json(obj, config, err);
}

const struct device_kind virtio_fs_kind = {
    .name = "fs",
    .cli_flag = "--fs",
    .cli_value = true,
    .json_key = "fs",
    .json_array = true,
    .virtio = true,
    .shares_ram = true,
    .config_size = sizeof(struct fs_spec),
    .from_cli = fs_from_cli,
    .from_json = fs_from_json,
    .create = fs_create,
    .destroy = virtio_mmio_destroy,
    /* no save/restore: virtiofsd's open files and the rings it holds can't be saved */
};
