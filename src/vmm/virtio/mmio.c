/* The virtio-mmio transport (virtio 1.x, 4.2, register layout version 2).
 *
 * Registers are read and written on vCPU threads under regs_lock; device work runs
 * on one worker thread per device, which holds work_lock while it calls the device.
 * A reset or activation from a vCPU takes work_lock too, so the device never sees
 * its queues change under it; the hot path (kick -> pop -> push -> irqfd) takes only
 * the worker's own lock, once per batch of events. */
#include "vmm/seccomp.h"
#include "vmm/virtio/virtio.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "base/log.h"
#include "vmm/device.h"
#include "vmm/devices/i8042.h"
#include "vmm/devices/rtc.h"
#include "vmm/layout.h"
#include "vmm/vm.h"

#define REG_MAGIC 0x000
#define REG_VERSION 0x004
#define REG_DEVICE_ID 0x008
#define REG_VENDOR_ID 0x00c
#define REG_DEVICE_FEATURES 0x010
#define REG_DEVICE_FEATURES_SEL 0x014
#define REG_DRIVER_FEATURES 0x020
#define REG_DRIVER_FEATURES_SEL 0x024
#define REG_QUEUE_SEL 0x030
#define REG_QUEUE_NUM_MAX 0x034
#define REG_QUEUE_NUM 0x038
#define REG_QUEUE_READY 0x044
#define REG_QUEUE_NOTIFY 0x050
#define REG_INTERRUPT_STATUS 0x060
#define REG_INTERRUPT_ACK 0x064
#define REG_STATUS 0x070
#define REG_QUEUE_DESC_LOW 0x080
#define REG_QUEUE_DESC_HIGH 0x084
#define REG_QUEUE_DRIVER_LOW 0x090
#define REG_QUEUE_DRIVER_HIGH 0x094
#define REG_QUEUE_DEVICE_LOW 0x0a0
#define REG_QUEUE_DEVICE_HIGH 0x0a4
#define REG_SHM_LEN_LOW 0x0b0
#define REG_SHM_LEN_HIGH 0x0b4
#define REG_SHM_BASE_LOW 0x0b8
#define REG_SHM_BASE_HIGH 0x0bc
#define REG_CONFIG_GENERATION 0x0fc
#define REG_CONFIG 0x100

#define MMIO_MAGIC 0x74726976 /* "virt" */
#define MMIO_VERSION 2
#define MMIO_VENDOR 0x4c535356 /* "VSSL" */

#define ISR_USED 1
#define ISR_CONFIG 2

#define FAILURES_LOGGED 16

enum ev_kind { EV_CTL, EV_NOTIFY, EV_TIMER, EV_DEVFD };

/* What an epoll event of the worker stands for (its data.ptr). Device fds are a list:
 * a device may add as many as it has (a tap per queue pair, a completion eventfd...). */
struct watch {
	enum ev_kind kind;
	unsigned qi; /* EV_NOTIFY */
	int fd;
	uint32_t events;
	struct watch *next; /* EV_DEVFD */
};

struct queue_regs {
	uint16_t num;
	bool ready;
	struct virtq_addrs a;
};

struct virtio_mmio {
	struct vm *vm;
	const struct virtio_device_ops *ops;
	void *dev;
	struct acpi_virtio_mmio slot;
	char name[48];

	pthread_mutex_t regs_lock; /* the register file, vCPU side */
	uint32_t dev_features_sel, drv_features_sel, queue_sel;
	uint64_t offered, driver_features;
	struct queue_regs qregs[VIRTIO_MMIO_MAX_QUEUES];

	pthread_mutex_t work_lock; /* held while the device runs; guards queues */
	struct virtq queues[VIRTIO_MMIO_MAX_QUEUES];
	atomic_uint status, isr;
	atomic_bool active, failed, stopping;
	atomic_uint failures;
	/* ConfigGeneration: changes with the config space (regs_lock), so a driver reading a
	 * field of more than 32 bits while it changes reads it again */
	uint32_t config_generation;

	int irq_fd, ctl_fd, timer_fd, epfd;
	int notify_fd[VIRTIO_MMIO_MAX_QUEUES];
	struct watch ctl_watch, timer_watch, notify_watch[VIRTIO_MMIO_MAX_QUEUES];
	struct watch *dev_fds; /* work_lock */
	bool dev_fds_on;       /* in the epoll set (work_lock) */
	pthread_t worker;
	bool worker_started;
	/* pause: the worker parks (work_lock released) while pause_req; both under work_lock */
	pthread_cond_t pause_cond;
	bool pause_req, parked;
	/* what transport_setup got from the VM, undone when one device is unplugged */
	bool irqfd_on, on_bus;
	unsigned ndoorbells;
};

/* Pins from VIRTIO_MMIO_FIRST_GSI on, skipping those the legacy devices own (the RTC's 8,
 * the i8042 mouse's 12): a fourth device on pin 8 could not get its interrupt once the
 * guest's rtc_cmos held it ("genirq: Flags mismatch irq 8"). 16 devices end at pin 22,
 * below GED_GSI. */
static unsigned slot_gsi(unsigned i)
{
	unsigned gsi = VIRTIO_MMIO_FIRST_GSI + i;
	if (gsi >= RTC_IRQ)
		gsi++;
	if (gsi >= I8042_AUX_IRQ)
		gsi++;
	return gsi;
}

void virtio_mmio_slot(unsigned i, struct acpi_virtio_mmio *out)
{
	*out = (struct acpi_virtio_mmio){
	    .base = LAYOUT_VIRTIO_MMIO + (uint64_t)i * VIRTIO_MMIO_WINDOW,
	    .size = VIRTIO_MMIO_WINDOW,
	    .gsi = slot_gsi(i),
	};
}

static void raise_irq(struct virtio_mmio *t, unsigned why)
{
	atomic_fetch_or(&t->isr, why);
	uint64_t one = 1;
	if (write(t->irq_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		vs_warn("%s: interrupt: %s", t->name, strerror(errno));
}

static void ctl_poke(struct virtio_mmio *t)
{
	uint64_t one = 1;
	if (write(t->ctl_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		vs_warn("%s: waking the worker: %s", t->name, strerror(errno));
}

static int watch_set(struct virtio_mmio *t, struct watch *w, bool on)
{
	struct epoll_event ev = {.events = w->events, .data.ptr = w};
	return epoll_ctl(t->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, w->fd, &ev);
}

/* Device fds are in the worker's epoll set only while the device may use them, so a
 * readable tap (or a hung-up fd, which epoll reports whatever the mask) on a reset or
 * failed device does not spin the worker. Called with work_lock held. */
static void dev_fds_enable(struct virtio_mmio *t, bool on)
{
	if (t->dev_fds_on == on)
		return;
	t->dev_fds_on = on;
	for (struct watch *w = t->dev_fds; w; w = w->next)
		if (watch_set(t, w, on) < 0)
			vs_warn("%s: epoll: %s", t->name, strerror(errno));
}

struct virtq *virtio_mmio_queue(struct virtio_mmio *t, unsigned qi)
{
	return qi < t->ops->num_queues ? &t->queues[qi] : NULL;
}

void *virtio_mmio_device(struct virtio_mmio *t)
{
	return t->dev;
}

void virtio_mmio_notify_used(struct virtio_mmio *t, unsigned qi)
{
	if (qi < t->ops->num_queues && virtq_should_interrupt(&t->queues[qi]))
		raise_irq(t, ISR_USED);
}

int virtio_mmio_doorbell_fd(struct virtio_mmio *t, unsigned qi)
{
	return qi < t->ops->num_queues ? t->notify_fd[qi] : -1;
}

void virtio_mmio_raise_used(struct virtio_mmio *t)
{
	raise_irq(t, ISR_USED);
}

void virtio_mmio_notify_config(struct virtio_mmio *t)
{
	raise_irq(t, ISR_CONFIG);
}

void virtio_mmio_fail(struct virtio_mmio *t, const char *why)
{
	if (atomic_exchange(&t->failed, true))
		return;
	/* ISR before Status: a driver that sees NEEDS_RESET finds the interrupt's cause */
	atomic_fetch_or(&t->isr, ISR_CONFIG);
	atomic_fetch_or(&t->status, VIRTIO_STATUS_NEEDS_RESET);
	dev_fds_enable(t, false);
	unsigned n = atomic_fetch_add(&t->failures, 1);
	if (n < FAILURES_LOGGED)
		vs_warn("%s: %s; the device needs a reset", t->name, why);
	else if (n == FAILURES_LOGGED)
		vs_warn("%s: further failures are not logged", t->name);
	raise_irq(t, ISR_CONFIG);
}

int virtio_mmio_add_fd(struct virtio_mmio *t, int fd, uint32_t events, vs_err_t *err)
{
	struct watch *w = calloc(1, sizeof(*w));
	if (!w)
		return vs_err(err, ENOMEM, "%s: device fd", t->name);
	*w = (struct watch){.kind = EV_DEVFD, .fd = fd, .events = events};
	pthread_mutex_lock(&t->work_lock);
	/* added now even when idle: an fd epoll cannot watch is refused here, not later */
	int r = watch_set(t, w, true);
	int e = errno;
	if (r == 0) {
		if (!t->dev_fds_on)
			watch_set(t, w, false);
		w->next = t->dev_fds;
		t->dev_fds = w;
	}
	pthread_mutex_unlock(&t->work_lock);
	if (r < 0) {
		free(w);
		return vs_err(err, e, "%s: epoll", t->name);
	}
	return 0;
}

void virtio_mmio_wake_after(struct virtio_mmio *t, unsigned ms)
{
	struct itimerspec its = {
	    .it_value = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L}};
	if (ms == 0)
		its.it_value.tv_nsec = 1000; /* zero would disarm the timer */
	if (timerfd_settime(t->timer_fd, 0, &its, NULL) < 0)
		vs_warn("%s: timer: %s", t->name, strerror(errno));
}

static void drain(int fd)
{
	uint64_t v;
	while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
}

/* Worker, work_lock held: nothing in flight, then wait for the resume. The events
 * epoll gave before are handled after it, as if they came then. */
static void park(struct virtio_mmio *t)
{
	if (atomic_load(&t->active) && !atomic_load(&t->failed) && t->ops->quiesce)
		t->ops->quiesce(t->dev);
	t->parked = true;
	pthread_cond_broadcast(&t->pause_cond);
	while (t->pause_req && !atomic_load(&t->stopping))
		pthread_cond_wait(&t->pause_cond, &t->work_lock);
	t->parked = false;
}

void virtio_mmio_pause(struct virtio_mmio *t)
{
	pthread_mutex_lock(&t->work_lock);
	t->pause_req = true;
	pthread_mutex_unlock(&t->work_lock);
	ctl_poke(t);
	pthread_mutex_lock(&t->work_lock);
	while (t->worker_started && !t->parked && !atomic_load(&t->stopping))
		pthread_cond_wait(&t->pause_cond, &t->work_lock);
	pthread_mutex_unlock(&t->work_lock);
}

void virtio_mmio_resume(struct virtio_mmio *t)
{
	pthread_mutex_lock(&t->work_lock);
	t->pause_req = false;
	pthread_cond_broadcast(&t->pause_cond);
	pthread_mutex_unlock(&t->work_lock);
}

int virtio_mmio_reconfigure(struct virtio_mmio *t, virtio_reconfigure_fn fn, void *arg,
			    vs_err_t *err)
{
	/* the controller's thread is the only one that pauses and resumes: a paused VM's
	 * workers stay parked, a running one's is parked for the change alone */
	pthread_mutex_lock(&t->work_lock);
	bool was_paused = t->pause_req;
	pthread_mutex_unlock(&t->work_lock);
	if (!was_paused)
		virtio_mmio_pause(t);
	pthread_mutex_lock(&t->regs_lock);
	pthread_mutex_lock(&t->work_lock);
	int r = fn(t->dev, arg, err);
	if (r > 0)
		t->config_generation++;
	pthread_mutex_unlock(&t->work_lock);
	pthread_mutex_unlock(&t->regs_lock);
	/* a driver that is running learns of the new config (virtio 1.2, 4.2.3.4); one that
	 * is not reads it when it starts */
	if (r > 0 && (atomic_load(&t->status) & VIRTIO_STATUS_DRIVER_OK))
		raise_irq(t, ISR_CONFIG);
	if (!was_paused)
		virtio_mmio_resume(t);
	/* the worker looks at every queue again: a request that waited for a rate limiter's
	 * tokens is weighed against the new one */
	ctl_poke(t);
	return r < 0 ? -1 : 0;
}

static void *worker_main(void *arg)
{
	struct virtio_mmio *t = arg;
	struct epoll_event evs[32];
	vmm_seccomp_apply_or_die(VMM_THREAD_WORKER);
	while (!atomic_load(&t->stopping)) {
		int n = epoll_wait(t->epfd, evs, 32, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			vs_warn("%s: epoll_wait: %s", t->name, strerror(errno));
			break;
		}
		uint32_t kicked = 0;
		pthread_mutex_lock(&t->work_lock);
		if (t->pause_req)
			park(t);
		/* A VM freed while paused (a migrated one) ends here, touching no queue: its RAM
		 * may be a local migration's destination's now, the guest running on it there. */
		if (atomic_load(&t->stopping)) {
			pthread_mutex_unlock(&t->work_lock);
			break;
		}
		for (int i = 0; i < n; i++) {
			const struct watch *w = evs[i].data.ptr;
			switch (w->kind) {
			case EV_CTL: /* activation: look at every queue once */
			case EV_TIMER:
				drain(w->fd);
				kicked = ~0u;
				break;
			case EV_NOTIFY:
				drain(w->fd);
				kicked |= 1u << w->qi;
				break;
			case EV_DEVFD:
				if (atomic_load(&t->active) && !atomic_load(&t->failed) &&
				    t->ops->fd_ready)
					t->ops->fd_ready(t->dev, w->fd, evs[i].events);
				break;
			}
		}
		for (unsigned qi = 0; qi < t->ops->num_queues; qi++) {
			if (!(kicked & (1u << qi)))
				continue;
			if (!atomic_load(&t->active) || atomic_load(&t->failed))
				break;
			if (t->ops->queue_notify)
				t->ops->queue_notify(t->dev, qi);
		}
		pthread_mutex_unlock(&t->work_lock);
	}
	return NULL;
}

/* vCPU thread, regs_lock held. */
static void device_reset(struct virtio_mmio *t)
{
	pthread_mutex_lock(&t->work_lock);
	bool was_active = atomic_exchange(&t->active, false);
	dev_fds_enable(t, false);
	if (t->ops->reset)
		t->ops->reset(t->dev);
	for (unsigned qi = 0; qi < VIRTIO_MMIO_MAX_QUEUES; qi++) {
		virtq_reset(&t->queues[qi]);
		t->qregs[qi] = (struct queue_regs){0};
	}
	t->dev_features_sel = t->drv_features_sel = t->queue_sel = 0;
	t->driver_features = 0;
	atomic_store(&t->isr, 0);
	atomic_store(&t->failed, false);
	atomic_store(&t->status, 0);
	pthread_mutex_unlock(&t->work_lock);
	vs_debug("%s: reset%s", t->name, was_active ? " (was active)" : "");
}

/* vCPU thread, regs_lock held: DRIVER_OK was just set. */
static void device_activate(struct virtio_mmio *t)
{
	pthread_mutex_lock(&t->work_lock);
	bool event_idx = t->driver_features & (1ULL << VIRTIO_F_RING_EVENT_IDX);
	bool indirect = t->driver_features & (1ULL << VIRTIO_F_RING_INDIRECT_DESC);
	char why[256] = "";
	for (unsigned qi = 0; qi < t->ops->num_queues && !why[0]; qi++) {
		struct queue_regs *r = &t->qregs[qi];
		if (!r->ready)
			continue;
		vs_err_t e = NULL;
		if (virtq_init(&t->queues[qi], &t->vm->mem, r->num, &r->a, event_idx, indirect,
			       &e) < 0) {
			snprintf(why, sizeof(why), "queue %u: %s", qi, e->msg);
			vs_err_free(&e);
		}
	}
	if (!why[0] && t->ops->activate && t->ops->activate(t->dev, t->driver_features) < 0)
		snprintf(why, sizeof(why), "the device refused to start");
	if (why[0]) {
		virtio_mmio_fail(t, why);
	} else {
		atomic_store(&t->active, true);
		dev_fds_enable(t, true);
	}
	pthread_mutex_unlock(&t->work_lock);
	if (!why[0])
		ctl_poke(t);
}

static void status_write(struct virtio_mmio *t, uint32_t v)
{
	if (v == 0) {
		device_reset(t);
		return;
	}
	uint32_t old = atomic_load(&t->status);
	v &= 0xff;
	if ((v & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
		/* refuse (leave FEATURES_OK clear) what we did not offer, or no VERSION_1 */
		if ((t->driver_features & ~t->offered) ||
		    !(t->driver_features & (1ULL << VIRTIO_F_VERSION_1)))
			v &= ~(uint32_t)VIRTIO_STATUS_FEATURES_OK;
	}
	if ((old & VIRTIO_STATUS_FEATURES_OK) && !(v & VIRTIO_STATUS_FEATURES_OK))
		v |= VIRTIO_STATUS_FEATURES_OK; /* it cannot be taken back but by a reset */
	bool starting = (v & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK);
	if (starting && !(v & VIRTIO_STATUS_FEATURES_OK)) {
		v &= ~(uint32_t)VIRTIO_STATUS_DRIVER_OK;
		starting = false;
	}
	/* the worker may set NEEDS_RESET meanwhile: keep it */
	uint32_t cur = atomic_load(&t->status);
	while (
	    !atomic_compare_exchange_weak(&t->status, &cur, v | (cur & VIRTIO_STATUS_NEEDS_RESET)))
		;
	if (starting)
		device_activate(t);
}

static uint32_t reg_read(struct virtio_mmio *t, uint64_t off)
{
	struct queue_regs *q = t->queue_sel < t->ops->num_queues ? &t->qregs[t->queue_sel] : NULL;
	switch (off) {
	case REG_MAGIC:
		return MMIO_MAGIC;
	case REG_VERSION:
		return MMIO_VERSION;
	case REG_DEVICE_ID:
		return t->ops->device_id;
	case REG_VENDOR_ID:
		return MMIO_VENDOR;
	case REG_DEVICE_FEATURES:
		return t->dev_features_sel < 2
			   ? (uint32_t)(t->offered >> (32 * t->dev_features_sel))
			   : 0;
	case REG_QUEUE_NUM_MAX:
		return q ? t->ops->queue_max : 0;
	case REG_QUEUE_READY:
		return q ? q->ready : 0;
	case REG_INTERRUPT_STATUS:
		return atomic_load(&t->isr);
	case REG_STATUS:
		return atomic_load(&t->status);
	case REG_CONFIG_GENERATION:
		return t->config_generation;
	case REG_SHM_LEN_LOW:
	case REG_SHM_LEN_HIGH:
	case REG_SHM_BASE_LOW:
	case REG_SHM_BASE_HIGH:
		/* no shared memory regions: a length of -1 says so (4.2.2); a 0 would be a region
		 * of 0 bytes at 0, which Linux's virtio-fs tries to reserve for DAX and fails */
		return 0xffffffff;
	}
	return 0;
}

static void set_half(uint64_t *v, bool high, uint32_t x)
{
	*v = high ? (*v & 0xffffffffULL) | ((uint64_t)x << 32) : (*v & ~0xffffffffULL) | x;
}

static void reg_write(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	struct queue_regs *q = t->queue_sel < t->ops->num_queues ? &t->qregs[t->queue_sel] : NULL;
	/* a live queue's set-up stays as it was activated (4.2.2.2) */
	bool q_writable = q && !q->ready;
	switch (off) {
	case REG_DEVICE_FEATURES_SEL:
		t->dev_features_sel = v;
		break;
	case REG_DRIVER_FEATURES:
		if (t->drv_features_sel < 2 &&
		    !(atomic_load(&t->status) & VIRTIO_STATUS_FEATURES_OK))
			set_half(&t->driver_features, t->drv_features_sel == 1, v);
		break;
	case REG_DRIVER_FEATURES_SEL:
		t->drv_features_sel = v;
		break;
	case REG_QUEUE_SEL:
		t->queue_sel = v;
		break;
	case REG_QUEUE_NUM:
		if (q_writable)
			q->num = v <= t->ops->queue_max ? (uint16_t)v : 0;
		break;
	case REG_QUEUE_READY:
		if (!q)
			break;
		if (!(v & 1) && q->ready) {
			/* the driver takes the queue back (Linux's del_vq): stop using it */
			pthread_mutex_lock(&t->work_lock);
			virtq_reset(&t->queues[t->queue_sel]);
			pthread_mutex_unlock(&t->work_lock);
			q->ready = false;
		} else if ((v & 1) && !(atomic_load(&t->status) & VIRTIO_STATUS_DRIVER_OK)) {
			q->ready = true;
		}
		break;
	case REG_QUEUE_NOTIFY:
		/* the ioeventfd takes 32-bit writes of a valid index; anything else lands here */
		if (v < t->ops->num_queues) {
			uint64_t one = 1;
			if (write(t->notify_fd[v], &one, sizeof(one)) < 0 && errno != EAGAIN)
				vs_warn("%s: notify: %s", t->name, strerror(errno));
		}
		break;
	case REG_INTERRUPT_ACK:
		atomic_fetch_and(&t->isr, ~v);
		break;
	case REG_STATUS:
		status_write(t, v);
		break;
	case REG_QUEUE_DESC_LOW:
	case REG_QUEUE_DESC_HIGH:
		if (q_writable)
			set_half(&q->a.desc, off == REG_QUEUE_DESC_HIGH, v);
		break;
	case REG_QUEUE_DRIVER_LOW:
	case REG_QUEUE_DRIVER_HIGH:
		if (q_writable)
			set_half(&q->a.avail, off == REG_QUEUE_DRIVER_HIGH, v);
		break;
	case REG_QUEUE_DEVICE_LOW:
	case REG_QUEUE_DEVICE_HIGH:
		if (q_writable)
			set_half(&q->a.used, off == REG_QUEUE_DEVICE_HIGH, v);
		break;
	}
}

static void mmio_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct virtio_mmio *t = opaque;
	if (off >= REG_CONFIG) {
		/* under regs_lock: a live change of the config space (virtio_mmio_reconfigure)
		 * and its generation are one step to a driver */
		uint32_t coff = (uint32_t)(off - REG_CONFIG);
		pthread_mutex_lock(&t->regs_lock);
		if (is_write && t->ops->config_write)
			t->ops->config_write(t->dev, coff, data, len);
		else if (!is_write && t->ops->config_read)
			t->ops->config_read(t->dev, coff, data, len);
		else if (!is_write)
			memset(data, 0, len);
		pthread_mutex_unlock(&t->regs_lock);
		return;
	}
	if (len != 4 || off % 4) { /* registers take aligned 32-bit accesses only (4.2.2.2) */
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	pthread_mutex_lock(&t->regs_lock);
	if (is_write) {
		uint32_t v;
		memcpy(&v, data, 4);
		reg_write(t, off, v);
	} else {
		uint32_t v = reg_read(t, off);
		memcpy(data, &v, 4);
	}
	pthread_mutex_unlock(&t->regs_lock);
}

/* QueueNotify with value qi signals notify_fd[qi] inside KVM: no exit to vessel. */
static struct vm_doorbell notify_doorbell(const struct virtio_mmio *t, unsigned qi)
{
	return (struct vm_doorbell){
	    .addr = t->slot.base + REG_QUEUE_NOTIFY,
	    .len = 4,
	    .mmio = true,
	    .datamatch = true,
	    .data = qi,
	    .fd = t->notify_fd[qi],
	};
}

/* Gives back what transport_setup took from the VM, so the window and GSI can serve
 * another device. A VM being destroyed skips this: KVM drops it all with the VM. */
static void unplug(struct virtio_mmio *t)
{
	vs_err_t e = NULL;
	if (t->on_bus)
		bus_remove(&t->vm->mmio, t->slot.base);
	for (unsigned qi = 0; qi < t->ndoorbells; qi++) {
		struct vm_doorbell d = notify_doorbell(t, qi);
		if (vm_doorbell_remove(t->vm, &d, &e) < 0) {
			vs_warn("%s: %s", t->name, e->msg);
			vs_err_free(&e);
		}
	}
	if (t->irqfd_on && vm_irqfd_remove(t->vm, t->irq_fd, t->slot.gsi, &e) < 0) {
		vs_warn("%s: %s", t->name, e->msg);
		vs_err_free(&e);
	}
	t->on_bus = t->irqfd_on = false;
	t->ndoorbells = 0;
}

static void transport_free(struct virtio_mmio *t, bool destroy_dev, bool unplugging)
{
	if (t->worker_started) {
		pthread_mutex_lock(&t->work_lock);
		atomic_store(&t->stopping, true);
		pthread_cond_broadcast(&t->pause_cond); /* a paused worker */
		pthread_mutex_unlock(&t->work_lock);
		ctl_poke(t);
		pthread_join(t->worker, NULL);
	}
	if (unplugging)
		unplug(t);
	if (destroy_dev && t->ops->destroy)
		t->ops->destroy(t->dev);
	while (t->dev_fds) {
		struct watch *w = t->dev_fds;
		t->dev_fds = w->next;
		free(w);
	}
	int *fds[] = {&t->irq_fd, &t->ctl_fd, &t->timer_fd, &t->epfd};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (*fds[i] >= 0)
			close(*fds[i]);
	for (unsigned qi = 0; qi < VIRTIO_MMIO_MAX_QUEUES; qi++)
		if (t->notify_fd[qi] >= 0)
			close(t->notify_fd[qi]);
	pthread_mutex_destroy(&t->regs_lock);
	pthread_mutex_destroy(&t->work_lock);
	pthread_cond_destroy(&t->pause_cond);
	free(t);
}

static int epoll_watch(struct virtio_mmio *t, struct watch *w, int fd, enum ev_kind kind,
		       unsigned qi, vs_err_t *err)
{
	*w = (struct watch){.kind = kind, .qi = qi, .fd = fd, .events = EPOLLIN};
	if (watch_set(t, w, true) < 0)
		return vs_err(err, errno, "%s: epoll", t->name);
	return 0;
}

static int transport_setup(struct virtio_mmio *t, vs_err_t *err)
{
	t->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	t->ctl_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	t->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (t->irq_fd < 0 || t->ctl_fd < 0 || t->timer_fd < 0 || t->epfd < 0)
		return vs_err(err, errno, "%s: eventfd/epoll", t->name);
	if (vm_irqfd(t->vm, t->irq_fd, t->slot.gsi, err) < 0)
		return vs_err_wrap(err, "%s", t->name);
	t->irqfd_on = true;
	if (epoll_watch(t, &t->ctl_watch, t->ctl_fd, EV_CTL, 0, err) < 0 ||
	    epoll_watch(t, &t->timer_watch, t->timer_fd, EV_TIMER, 0, err) < 0)
		return -1;
	for (unsigned qi = 0; qi < t->ops->num_queues; qi++) {
		t->notify_fd[qi] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (t->notify_fd[qi] < 0)
			return vs_err(err, errno, "%s: eventfd", t->name);
		struct vm_doorbell d = notify_doorbell(t, qi);
		if (vm_doorbell(t->vm, &d, err) < 0)
			return vs_err_wrap(err, "%s: queue %u", t->name, qi);
		t->ndoorbells = qi + 1;
		/* a back-end reads the kicks itself: the worker must not drain them first */
		if (!t->ops->backend_queues &&
		    epoll_watch(t, &t->notify_watch[qi], t->notify_fd[qi], EV_NOTIFY, qi, err) < 0)
			return -1;
	}
	if (bus_add(&t->vm->mmio, t->slot.base, t->slot.size, t->name, mmio_io, t, err) < 0)
		return -1;
	t->on_bus = true;
	/* the worker takes no signals: they belong to the vCPUs and the main loop */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int r = pthread_create(&t->worker, NULL, worker_main, t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		return vs_err(err, r, "%s: worker thread", t->name);
	t->worker_started = true;
	return 0;
}

int virtio_mmio_add(struct vm *vm, const struct virtio_device_ops *ops, void *dev,
		    struct virtio_mmio **out, vs_err_t *err)
{
	if (ops->num_queues == 0 || ops->num_queues > VIRTIO_MMIO_MAX_QUEUES)
		return vs_err(err, 0, "virtio-%s: %u queues (1 to %u)", ops->name, ops->num_queues,
			      VIRTIO_MMIO_MAX_QUEUES);
	if (ops->queue_max == 0 || ops->queue_max > VIRTQ_MAX_SIZE ||
	    (ops->queue_max & (ops->queue_max - 1)))
		return vs_err(err, 0, "virtio-%s: queue size %u", ops->name, ops->queue_max);
	/* the first free window: a removed device's is taken again */
	unsigned index = 0;
	struct acpi_virtio_mmio slot;
	for (; index < VIRTIO_MMIO_MAX_DEVICES; index++) {
		virtio_mmio_slot(index, &slot);
		if (!bus_find(&vm->mmio, slot.base))
			break;
	}
	if (index >= VIRTIO_MMIO_MAX_DEVICES)
		return vs_err(err, 0, "virtio-%s: more than %u virtio devices", ops->name,
			      VIRTIO_MMIO_MAX_DEVICES);

	struct virtio_mmio *t = calloc(1, sizeof(*t));
	if (!t)
		return vs_err(err, ENOMEM, "virtio-%s", ops->name);
	t->vm = vm;
	t->ops = ops;
	t->dev = dev;
	t->offered = ops->features | (1ULL << VIRTIO_F_VERSION_1) |
		     (1ULL << VIRTIO_F_RING_EVENT_IDX) | (1ULL << VIRTIO_F_RING_INDIRECT_DESC);
	t->slot = slot;
	snprintf(t->name, sizeof(t->name), "virtio-%s@0x%llx", ops->name,
		 (unsigned long long)t->slot.base);
	t->irq_fd = t->ctl_fd = t->timer_fd = t->epfd = -1;
	for (unsigned qi = 0; qi < VIRTIO_MMIO_MAX_QUEUES; qi++)
		t->notify_fd[qi] = -1;
	pthread_mutex_init(&t->regs_lock, NULL);
	pthread_mutex_init(&t->work_lock, NULL);
	pthread_cond_init(&t->pause_cond, NULL);
	if (transport_setup(t, err) < 0) {
		transport_free(t, false, true);
		return -1;
	}
	vs_debug("%s: irq %u", t->name, t->slot.gsi);
	if (out)
		*out = t;
	return 0;
}

void virtio_mmio_remove(struct virtio_mmio *t)
{
	transport_free(t, true, true);
}

void virtio_mmio_destroy(void *t)
{
	transport_free(t, true, false);
}

size_t virtio_mmio_acpi(const struct vm *vm, struct acpi_virtio_mmio *out, size_t max)
{
	size_t n = 0;
	for (const struct vm_device *d = vm->devices; d; d = d->next)
		if (d->kind->virtio && n < max)
			out[n++] = ((const struct virtio_mmio *)d->state)->slot;
	return n;
}

char *virtio_mmio_cmdline(const struct vm *vm)
{
	size_t cap = 64 * VIRTIO_MMIO_MAX_DEVICES + 1, len = 0;
	char *s = calloc(1, cap);
	if (!s)
		return NULL;
	struct acpi_virtio_mmio slots[VIRTIO_MMIO_MAX_DEVICES];
	size_t n = virtio_mmio_acpi(vm, slots, VIRTIO_MMIO_MAX_DEVICES);
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(s + len, cap - len, " virtio_mmio.device=4K@0x%llx:%u",
					(unsigned long long)slots[i].base, slots[i].gsi);
	return s;
}

/* The snapshot blob: fixed-width fields, little-endian (x86-64's own order), in the order
 * below; version first so a later layout is refused, not misread. */
#define SNAP_VERSION 1
#define SNAP_STATUS_BITS                                                                   \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK |       \
	 VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)

struct snap_queue {
	uint16_t num;
	uint8_t ready;
	uint64_t desc, avail, used;
	uint16_t last_avail, used_idx, signalled_used;
};

struct snap {
	uint32_t version, device_id, status, isr, dev_features_sel, drv_features_sel, queue_sel;
	uint64_t driver_features;
	uint32_t nqueues;
	struct snap_queue q[VIRTIO_MMIO_MAX_QUEUES];
	uint32_t dev_len;
};

struct wbuf {
	uint8_t *p;
	size_t len, cap;
	bool oom;
};

static void put(struct wbuf *w, const void *v, size_t n)
{
	if (w->oom)
		return;
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 256;
		while (cap < w->len + n)
			cap *= 2;
		uint8_t *p = realloc(w->p, cap);
		if (!p) {
			w->oom = true;
			return;
		}
		w->p = p;
		w->cap = cap;
	}
	memcpy(w->p + w->len, v, n);
	w->len += n;
}

struct rbuf {
	const uint8_t *p;
	size_t len, off;
	bool short_;
};

static void get(struct rbuf *r, void *v, size_t n)
{
	if (r->short_ || r->len - r->off < n) {
		r->short_ = true;
		memset(v, 0, n);
		return;
	}
	memcpy(v, r->p + r->off, n);
	r->off += n;
}

#define PUT(w, x) put((w), &(x), sizeof(x))
#define GET(r, x) get((r), &(x), sizeof(x))

int virtio_mmio_save(void *state, void **blob, size_t *len, vs_err_t *err)
{
	struct virtio_mmio *t = state;
	void *dev_blob = NULL;
	size_t dev_len = 0;
	if (t->ops->save && t->ops->save(t->dev, &dev_blob, &dev_len, err) < 0)
		return vs_err_wrap(err, "%s", t->name);
	if (dev_len > UINT32_MAX) {
		free(dev_blob);
		return vs_err(err, 0, "%s: device state of %zu bytes", t->name, dev_len);
	}
	struct snap s = {.version = SNAP_VERSION, .device_id = t->ops->device_id};
	pthread_mutex_lock(&t->regs_lock);
	pthread_mutex_lock(&t->work_lock);
	s.status = atomic_load(&t->status);
	s.isr = atomic_load(&t->isr);
	s.dev_features_sel = t->dev_features_sel;
	s.drv_features_sel = t->drv_features_sel;
	s.queue_sel = t->queue_sel;
	s.driver_features = t->driver_features;
	s.nqueues = t->ops->num_queues;
	for (unsigned qi = 0; qi < s.nqueues; qi++) {
		const struct queue_regs *r = &t->qregs[qi];
		const struct virtq *q = &t->queues[qi];
		s.q[qi] = (struct snap_queue){
		    .num = r->num,
		    .ready = r->ready,
		    .desc = r->a.desc,
		    .avail = r->a.avail,
		    .used = r->a.used,
		    .last_avail = q->last_avail,
		    .used_idx = q->used_idx,
		    .signalled_used = q->signalled_used,
		};
	}
	pthread_mutex_unlock(&t->work_lock);
	pthread_mutex_unlock(&t->regs_lock);

	struct wbuf w = {0};
	PUT(&w, s.version);
	PUT(&w, s.device_id);
	PUT(&w, s.status);
	PUT(&w, s.isr);
	PUT(&w, s.dev_features_sel);
	PUT(&w, s.drv_features_sel);
	PUT(&w, s.queue_sel);
	PUT(&w, s.driver_features);
	PUT(&w, s.nqueues);
	for (unsigned qi = 0; qi < s.nqueues; qi++) {
		PUT(&w, s.q[qi].num);
		PUT(&w, s.q[qi].ready);
		PUT(&w, s.q[qi].desc);
		PUT(&w, s.q[qi].avail);
		PUT(&w, s.q[qi].used);
		PUT(&w, s.q[qi].last_avail);
		PUT(&w, s.q[qi].used_idx);
		PUT(&w, s.q[qi].signalled_used);
	}
	uint32_t dl = (uint32_t)dev_len;
	PUT(&w, dl);
	if (dev_len)
		put(&w, dev_blob, dev_len);
	free(dev_blob);
	if (w.oom) {
		free(w.p);
		return vs_err(err, ENOMEM, "%s: saving", t->name);
	}
	*blob = w.p;
	*len = w.len;
	return 0;
}

/* Every field of the blob against what this device can be; 0 or -1 naming the field. */
static int snap_parse(const struct virtio_mmio *t, const void *blob, size_t len, struct snap *s,
		      const uint8_t **dev_blob, vs_err_t *err)
{
	struct rbuf r = {.p = blob, .len = len};
	GET(&r, s->version);
	if (r.short_)
		return vs_err(err, 0, "%s: snapshot: state of %zu bytes, truncated", t->name, len);
	if (s->version != SNAP_VERSION)
		return vs_err(err, 0, "%s: snapshot: format version %u (this vessel reads %u)",
			      t->name, s->version, SNAP_VERSION);
	GET(&r, s->device_id);
	GET(&r, s->status);
	GET(&r, s->isr);
	GET(&r, s->dev_features_sel);
	GET(&r, s->drv_features_sel);
	GET(&r, s->queue_sel);
	GET(&r, s->driver_features);
	GET(&r, s->nqueues);
	if (r.short_)
		return vs_err(err, 0, "%s: snapshot: state truncated", t->name);
	if (s->device_id != t->ops->device_id)
		return vs_err(err, 0, "%s: snapshot: device_id %u, this device is %u", t->name,
			      s->device_id, t->ops->device_id);
	if (s->nqueues != t->ops->num_queues)
		return vs_err(err, 0, "%s: snapshot: %u queues, this device has %u", t->name,
			      s->nqueues, t->ops->num_queues);
	if (s->status & ~(uint32_t)SNAP_STATUS_BITS)
		return vs_err(err, 0, "%s: snapshot: status 0x%x has unknown bits", t->name,
			      s->status);
	if ((s->status & VIRTIO_STATUS_DRIVER_OK) && !(s->status & VIRTIO_STATUS_FEATURES_OK))
		return vs_err(err, 0, "%s: snapshot: status 0x%x: DRIVER_OK without FEATURES_OK",
			      t->name, s->status);
	if (s->isr & ~(uint32_t)(ISR_USED | ISR_CONFIG))
		return vs_err(err, 0, "%s: snapshot: interrupt status 0x%x", t->name, s->isr);
	if (s->driver_features & ~t->offered)
		return vs_err(err, 0, "%s: snapshot: driver features 0x%llx not offered (0x%llx)",
			      t->name, (unsigned long long)s->driver_features,
			      (unsigned long long)t->offered);
	if ((s->status & VIRTIO_STATUS_FEATURES_OK) &&
	    !(s->driver_features & (1ULL << VIRTIO_F_VERSION_1)))
		return vs_err(err, 0, "%s: snapshot: FEATURES_OK without VERSION_1", t->name);
	for (unsigned qi = 0; qi < s->nqueues; qi++) {
		struct snap_queue *q = &s->q[qi];
		GET(&r, q->num);
		GET(&r, q->ready);
		GET(&r, q->desc);
		GET(&r, q->avail);
		GET(&r, q->used);
		GET(&r, q->last_avail);
		GET(&r, q->used_idx);
		GET(&r, q->signalled_used);
		if (r.short_)
			return vs_err(err, 0, "%s: snapshot: queue %u truncated", t->name, qi);
		if (q->num > t->ops->queue_max)
			return vs_err(err, 0, "%s: snapshot: queue %u size %u (max %u)", t->name,
				      qi, q->num, t->ops->queue_max);
		if (q->ready > 1)
			return vs_err(err, 0, "%s: snapshot: queue %u ready %u", t->name, qi,
				      q->ready);
		/* nothing is in flight at a pause: at most a queue's worth taken, not answered */
		if (q->ready && (uint16_t)(q->last_avail - q->used_idx) > q->num)
			return vs_err(err, 0,
				      "%s: snapshot: queue %u indices: next avail %u, used %u",
				      t->name, qi, q->last_avail, q->used_idx);
	}
	GET(&r, s->dev_len);
	if (r.short_)
		return vs_err(err, 0, "%s: snapshot: state truncated", t->name);
	if (s->dev_len != r.len - r.off)
		return vs_err(err, 0, "%s: snapshot: device state of %u bytes, %zu given", t->name,
			      s->dev_len, r.len - r.off);
	*dev_blob = r.p + r.off;
	return 0;
}

int virtio_mmio_restore(void *state, const void *blob, size_t len, vs_err_t *err)
{
	struct virtio_mmio *t = state;
	struct snap s;
	const uint8_t *dev_blob = NULL;
	if (snap_parse(t, blob, len, &s, &dev_blob, err) < 0)
		return -1;
	/* a device is running when the driver said DRIVER_OK and it did not fail since */
	bool active = (s.status & VIRTIO_STATUS_DRIVER_OK) &&
		      !(s.status & VIRTIO_STATUS_NEEDS_RESET);
	bool event_idx = s.driver_features & (1ULL << VIRTIO_F_RING_EVENT_IDX);
	bool indirect = s.driver_features & (1ULL << VIRTIO_F_RING_INDIRECT_DESC);
	struct virtq queues[VIRTIO_MMIO_MAX_QUEUES];
	memset(queues, 0, sizeof(queues));
	for (unsigned qi = 0; active && qi < s.nqueues; qi++) {
		const struct snap_queue *q = &s.q[qi];
		if (!q->ready)
			continue;
		struct virtq_addrs a = {.desc = q->desc, .avail = q->avail, .used = q->used};
		if (virtq_restore(&queues[qi], &t->vm->mem, q->num, &a, event_idx, indirect,
				  q->last_avail, q->used_idx, q->signalled_used, err) < 0)
			return vs_err_wrap(err, "%s: snapshot: queue %u", t->name, qi);
	}

	pthread_mutex_lock(&t->regs_lock);
	pthread_mutex_lock(&t->work_lock);
	int r = 0;
	if (atomic_load(&t->active) || atomic_load(&t->status)) {
		r = vs_err(err, 0, "%s: snapshot: restored onto a device already in use", t->name);
		goto out;
	}
	if (t->ops->restore && t->ops->restore(t->dev, dev_blob, s.dev_len, err) < 0) {
		r = vs_err_wrap(err, "%s: snapshot", t->name);
		goto out;
	}
	if (!t->ops->restore && s.dev_len) {
		r = vs_err(err, 0, "%s: snapshot: %u bytes of device state, none expected",
			   t->name, s.dev_len);
		goto out;
	}
	if (active && t->ops->activate && t->ops->activate(t->dev, s.driver_features) < 0) {
		if (t->ops->reset)
			t->ops->reset(t->dev);
		r = vs_err(err, 0, "%s: snapshot: the device refused to start", t->name);
		goto out;
	}
	t->dev_features_sel = s.dev_features_sel;
	t->drv_features_sel = s.drv_features_sel;
	t->queue_sel = s.queue_sel;
	t->driver_features = s.driver_features;
	for (unsigned qi = 0; qi < s.nqueues; qi++) {
		t->qregs[qi] = (struct queue_regs){
		    .num = s.q[qi].num,
		    .ready = s.q[qi].ready,
		    .a = {.desc = s.q[qi].desc, .avail = s.q[qi].avail, .used = s.q[qi].used},
		};
		t->queues[qi] = queues[qi];
	}
	atomic_store(&t->isr, s.isr);
	atomic_store(&t->failed, (s.status & VIRTIO_STATUS_NEEDS_RESET) != 0);
	atomic_store(&t->status, s.status);
	if (active) {
		atomic_store(&t->active, true);
		dev_fds_enable(t, true);
	}
out:
	pthread_mutex_unlock(&t->work_lock);
	pthread_mutex_unlock(&t->regs_lock);
	/* the worker looks at every queue once it is let go (devices_resume) */
	if (r == 0 && active)
		ctl_poke(t);
	return r;
}
