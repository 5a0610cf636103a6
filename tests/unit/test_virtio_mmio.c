/* The virtio-mmio transport against a fake VM (no /dev/kvm): the fake records the irqfd
 * and doorbells the transport asks the VM for; the test plays the guest through the MMIO
 * bus and plays KVM by signalling the doorbell eventfds itself. */
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/virtio_ring.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/layout.h"
#include "vmm/virtio/rng.h"
#include "vmm/virtio/virtio.h"
#include "vmm/vm.h"

#define MAX_BELLS 16

struct fake {
	int irq_fd;
	unsigned gsi;
	struct vm_doorbell bells[MAX_BELLS];
	unsigned nbells;
	int fail_doorbell_at; /* the n-th doorbell is refused (-1: none) */
	unsigned doorbells_seen;
	unsigned irqfd_removed, doorbells_removed;
};

static void fake_irq_line(struct vm *vm, unsigned gsi, int level)
{
	(void)vm;
	(void)gsi;
	(void)level;
}

static int fake_irqfd(struct vm *vm, int fd, unsigned gsi, bool assign, vs_err_t *err)
{
	struct fake *f = vm->ops_ctx;
	(void)err;
	if (assign) {
		f->irq_fd = fd;
		f->gsi = gsi;
	} else {
		f->irqfd_removed++;
	}
	return 0;
}

static int fake_doorbell(struct vm *vm, const struct vm_doorbell *d, bool assign, vs_err_t *err)
{
	struct fake *f = vm->ops_ctx;
	if (!assign) {
		f->doorbells_removed++;
		return 0;
	}
	if ((int)f->doorbells_seen++ == f->fail_doorbell_at)
		return vs_err(err, ENOSPC, "fake KVM_IOEVENTFD");
	cr_assert_lt(f->nbells, MAX_BELLS);
	f->bells[f->nbells++] = *d;
	return 0;
}

static const struct vm_ops fake_ops = {
    .irq_line = fake_irq_line,
    .irqfd = fake_irqfd,
    .doorbell = fake_doorbell,
};

static struct fake fake;
static struct vm vm;

static void setup(void)
{
	fake = (struct fake){.irq_fd = -1, .fail_doorbell_at = -1};
	vs_err_t err = NULL;
	cr_assert_eq(vm_create_detached(&vm, &fake_ops, &fake, GUEST_MEM_MIN, &err), 0, "%s",
		     err ? err->msg : "");
}

static void teardown(void)
{
	vm_destroy(&vm); /* and the devices it owns */
}

static void add_rng(void)
{
	vs_err_t err = NULL;
	cr_assert_eq(device_add(&vm, &virtio_rng_kind, NULL, &err), 0, "%s", err ? err->msg : "");
}

TestSuite(virtio_mmio, .init = setup, .fini = teardown);

/* The guest side: 32-bit register accesses through the MMIO bus, as a vCPU makes them. */
static uint32_t rd(uint64_t off)
{
	uint32_t v = 0;
	cr_assert(bus_access(&vm.mmio, LAYOUT_VIRTIO_MMIO + off, (uint8_t *)&v, 4, false));
	return v;
}

static void wr(uint64_t off, uint32_t v)
{
	cr_assert(bus_access(&vm.mmio, LAYOUT_VIRTIO_MMIO + off, (uint8_t *)&v, 4, true));
}

#define QSIZE 16
#define DESC_GPA 0x10000ULL
#define AVAIL_GPA 0x11000ULL
#define USED_GPA 0x12000ULL
#define BUF_GPA 0x20000ULL

static void *gpa(uint64_t a)
{
	return vm.mem.host + a;
}

/* What Linux's virtio_mmio driver does up to DRIVER_OK, with one queue of QSIZE. */
static void driver_start(bool with_queue)
{
	cr_assert_eq(rd(0x000), 0x74726976, "magic");
	cr_assert_eq(rd(0x004), 2, "version");
	wr(0x070, 0);
	wr(0x070, 1 | 2); /* ACKNOWLEDGE | DRIVER */
	wr(0x024, 1);
	wr(0x020, 1); /* VERSION_1 */
	wr(0x070, 1 | 2 | 8);
	cr_assert(rd(0x070) & 8, "FEATURES_OK kept");
	if (with_queue) {
		wr(0x030, 0);
		cr_assert_geq(rd(0x034), QSIZE);
		wr(0x038, QSIZE);
		wr(0x080, (uint32_t)DESC_GPA);
		wr(0x084, 0);
		wr(0x090, (uint32_t)AVAIL_GPA);
		wr(0x094, 0);
		wr(0x0a0, (uint32_t)USED_GPA);
		wr(0x0a4, 0);
		wr(0x044, 1);
	}
	wr(0x070, 1 | 2 | 8 | 4); /* DRIVER_OK */
	cr_assert_eq(rd(0x070) & 0x40, 0, "the device does not need a reset");
}

/* One device-writable buffer of len bytes, made available as the n-th request. */
static void offer(uint16_t n, uint32_t len)
{
	struct vring_desc *d = gpa(DESC_GPA);
	struct vring_avail *a = gpa(AVAIL_GPA);
	d[n % QSIZE] = (struct vring_desc){
	    .addr = BUF_GPA + n * 0x1000ULL, .len = len, .flags = VRING_DESC_F_WRITE};
	a->ring[n % QSIZE] = n % QSIZE;
	__atomic_store_n(&a->idx, (uint16_t)(n + 1), __ATOMIC_RELEASE);
}

static bool wait_fd(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, 5000) != 1)
		return false;
	uint64_t v;
	return read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v);
}

static uint16_t used_idx(void)
{
	struct vring_used *u = gpa(USED_GPA);
	return __atomic_load_n(&u->idx, __ATOMIC_ACQUIRE);
}

Test(virtio_mmio, rng_asks_the_vm_for_its_irqfd_and_doorbell)
{
	add_rng();
	cr_assert_geq(fake.irq_fd, 0);
	cr_assert_eq(fake.gsi, VIRTIO_MMIO_FIRST_GSI);
	cr_assert_eq(fake.nbells, 1);
	cr_assert_eq(fake.bells[0].addr, LAYOUT_VIRTIO_MMIO + 0x050, "QueueNotify");
	cr_assert_eq(fake.bells[0].len, 4);
	cr_assert(fake.bells[0].mmio && fake.bells[0].datamatch);
	cr_assert_eq(fake.bells[0].data, 0, "queue 0");
	cr_assert_eq(rd(0x008), VIRTIO_ID_RNG);
}

Test(virtio_mmio, rng_request_kicked_by_doorbell_and_by_register)
{
	add_rng();
	driver_start(true);

	/* KVM's side of the doorbell: the guest's QueueNotify write signals the eventfd */
	offer(0, 64);
	uint64_t one = 1;
	cr_assert_eq(write(fake.bells[0].fd, &one, sizeof(one)), (ssize_t)sizeof(one));
	cr_assert(wait_fd(fake.irq_fd), "no interrupt through the irqfd");
	cr_assert_eq(used_idx(), 1);
	struct vring_used *u = gpa(USED_GPA);
	cr_assert_eq(u->ring[0].id, 0);
	cr_assert_eq(u->ring[0].len, 64);
	cr_assert_eq(rd(0x060) & 1, 1, "ISR: used buffer");
	wr(0x064, 1);
	cr_assert_eq(rd(0x060), 0);
	static const uint8_t zero[64];
	cr_assert_neq(memcmp(gpa(BUF_GPA), zero, 64), 0, "the buffer got entropy");

	/* a write the doorbell did not match (no ioeventfd) exits to the bus: same effect */
	offer(1, 32);
	wr(0x050, 0);
	cr_assert(wait_fd(fake.irq_fd));
	cr_assert_eq(used_idx(), 2);
	cr_assert_eq(u->ring[1].len, 32);
}

Test(virtio_mmio, bad_queue_setup_needs_reset_not_a_crash)
{
	add_rng();
	wr(0x070, 1 | 2);
	wr(0x024, 1);
	wr(0x020, 1);
	wr(0x070, 1 | 2 | 8);
	wr(0x038, QSIZE);
	wr(0x080, 0xfff00000u); /* past the end of guest RAM */
	wr(0x090, (uint32_t)AVAIL_GPA);
	wr(0x0a0, (uint32_t)USED_GPA);
	wr(0x044, 1);
	wr(0x070, 1 | 2 | 8 | 4);
	cr_assert(wait_fd(fake.irq_fd), "the config interrupt announces the failure");
	cr_assert(rd(0x070) & 0x40, "DEVICE_NEEDS_RESET");
	wr(0x070, 0);
	cr_assert_eq(rd(0x070), 0, "a reset clears it");
}

/* A device with many fds: the transport has no cap on them any more. */
#define MANY_FDS 20

struct many {
	int fds[MANY_FDS];
	atomic_int ready_mask_hits;
	int last_fd;
	int done_fd;
};

static void many_fd_ready(void *dev, int fd, uint32_t events)
{
	struct many *m = dev;
	(void)events;
	uint64_t v;
	if (read(fd, &v, sizeof(v)) < 0)
		return;
	m->last_fd = fd;
	atomic_fetch_add(&m->ready_mask_hits, 1);
	uint64_t one = 1;
	if (write(m->done_fd, &one, sizeof(one)) < 0)
		return;
}

static const struct virtio_device_ops many_ops = {
    .name = "many",
    .device_id = 0x7f,
    .num_queues = 1,
    .queue_max = QSIZE,
    .fd_ready = many_fd_ready,
};

Test(virtio_mmio, a_device_may_add_any_number_of_fds)
{
	static struct many m;
	m.done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	for (int i = 0; i < MANY_FDS; i++)
		m.fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vs_err_t err = NULL;
	struct virtio_mmio *t;
	cr_assert_eq(virtio_mmio_add(&vm, &many_ops, &m, &t, &err), 0, "%s", err ? err->msg : "");
	for (int i = 0; i < MANY_FDS; i++)
		cr_assert_eq(virtio_mmio_add_fd(t, m.fds[i], EPOLLIN, &err), 0, "fd %d: %s", i,
			     err ? err->msg : "");
	uint64_t one = 1;
	/* not polled before DRIVER_OK */
	cr_assert_eq(write(m.fds[MANY_FDS - 1], &one, sizeof(one)), (ssize_t)sizeof(one));
	driver_start(false);
	cr_assert(wait_fd(m.done_fd), "the last fd's readiness reached the device");
	cr_assert_eq(m.last_fd, m.fds[MANY_FDS - 1]);
	cr_assert_eq(atomic_load(&m.ready_mask_hits), 1);
	virtio_mmio_remove(t);
	for (int i = 0; i < MANY_FDS; i++)
		close(m.fds[i]);
	close(m.done_fd);
}

static const struct virtio_device_ops two_queue_ops = {
    .name = "two",
    .device_id = 0x7e,
    .num_queues = 2,
    .queue_max = QSIZE,
};

Test(virtio_mmio, a_failed_add_gives_back_its_window_irqfd_and_doorbells)
{
	vs_err_t err = NULL;
	fake.fail_doorbell_at = 1; /* the second queue's doorbell */
	cr_assert_eq(virtio_mmio_add(&vm, &two_queue_ops, NULL, NULL, &err), -1);
	cr_assert(strstr(err->msg, "fake KVM_IOEVENTFD"), "%s", err->msg);
	vs_err_free(&err);
	cr_assert_eq(fake.doorbells_removed, 1, "the first queue's doorbell is taken back");
	cr_assert_eq(fake.irqfd_removed, 1);
	uint32_t v;
	cr_assert_not(bus_access(&vm.mmio, LAYOUT_VIRTIO_MMIO, (uint8_t *)&v, 4, false),
		      "the window is free again");

	add_rng();
	cr_assert_eq(rd(0x008), VIRTIO_ID_RNG, "the next device gets the first window");
}

Test(virtio_mmio, the_vm_owns_its_devices_and_knows_which_cannot_be_snapshotted)
{
	vs_err_t err = NULL;
	cr_assert_eq(device_check_snapshot(&vm, &err), 0, "no devices: nothing refuses");
	add_rng();
	add_rng();
	struct acpi_virtio_mmio slots[4];
	cr_assert_eq(virtio_mmio_acpi(&vm, slots, 4), 2);
	cr_assert_eq(slots[1].base, LAYOUT_VIRTIO_MMIO + VIRTIO_MMIO_WINDOW);
	cr_assert_eq(slots[1].gsi, VIRTIO_MMIO_FIRST_GSI + 1);
	char *words = virtio_mmio_cmdline(&vm);
	cr_assert_str_eq(words,
			 " virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6");
	free(words);
	cr_assert_not_null(device_find(&vm, &virtio_rng_kind));
	cr_assert_null(device_find(&vm, &serial_kind));
	cr_assert_eq(device_check_snapshot(&vm, &err), -1);
	cr_assert(strstr(err->msg, "entropy") && strstr(err->msg, "cannot be snapshotted"), "%s",
		  err->msg);
	vs_err_free(&err);
}
