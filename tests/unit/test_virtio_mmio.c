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

#include "vmm/devices/i8042.h"
#include "vmm/devices/rtc.h"
#include "vmm/layout.h"
#include "vmm/virtio/blk.h"
#include "vmm/virtio/blk_spec.h"
#include "vmm/virtio/net.h"
#include "vmm/virtio/net_spec.h"
#include "vmm/virtio/rng.h"
#include "vmm/virtio/virtio.h"
#include "vmm/vm.h"

#include "fake_kvm.h"

static struct fake fake;
static struct vm vm;

static void setup(void)
{
	fake_vm_create(&vm, &fake, GUEST_MEM_MIN);
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

static uint32_t rd(uint64_t off)
{
	return fake_mmio_rd(&vm, off);
}

static void wr(uint64_t off, uint32_t v)
{
	fake_mmio_wr(&vm, off, v);
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

static void *nosave_create(struct vm *v, const void *config, vs_err_t *err)
{
	(void)v;
	(void)config;
	(void)err;
	return malloc(1);
}

static const struct device_kind nosave_kind = {
    .name = "nosave", .builtin = true, .create = nosave_create, .destroy = free};

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
	cr_assert_eq(device_check_snapshot(&vm, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(device_add(&vm, &nosave_kind, NULL, &err), 0);
	cr_assert_eq(device_check_snapshot(&vm, &err), -1);
	cr_assert(strstr(err->msg, "nosave") && strstr(err->msg, "cannot be snapshotted"), "%s",
		  err->msg);
	vs_err_free(&err);
}

/* Snapshots: a running rng with two requests answered, saved with the VM paused, then
 * restored into a fresh VM (as a load does: create, pause, restore, resume). */
#define RAM_KEEP 0x30000

static void *save_running_rng(size_t *len, uint8_t **ram)
{
	add_rng();
	driver_start(true);
	offer(0, 64);
	wr(0x050, 0);
	cr_assert(wait_fd(fake.irq_fd));
	offer(1, 32);
	wr(0x050, 0);
	cr_assert(wait_fd(fake.irq_fd));
	cr_assert_eq(used_idx(), 2);
	devices_pause(&vm);
	void *blob = NULL;
	vs_err_t err = NULL;
	struct virtio_mmio *t = device_find(&vm, &virtio_rng_kind);
	cr_assert_eq(virtio_rng_kind.save(t, &blob, len, &err), 0, "%s", err ? err->msg : "");
	devices_resume(&vm);
	*ram = malloc(RAM_KEEP);
	memcpy(*ram, vm.mem.host, RAM_KEEP);
	return blob;
}

/* A new VM with the old RAM and a fresh, paused rng. */
static struct virtio_mmio *fresh_vm(const uint8_t *ram)
{
	vm_destroy(&vm);
	setup();
	memcpy(vm.mem.host, ram, RAM_KEEP);
	add_rng();
	devices_pause(&vm);
	return device_find(&vm, &virtio_rng_kind);
}

Test(virtio_mmio, rng_round_trip_continues_where_it_stopped)
{
	size_t len;
	uint8_t *ram;
	void *blob = save_running_rng(&len, &ram);
	struct virtio_mmio *t = fresh_vm(ram);
	vs_err_t err = NULL;
	cr_assert_eq(virtio_rng_kind.restore(t, blob, len, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(used_idx(), 2, "the used ring is left as the guest saw it");
	devices_resume(&vm);
	cr_assert_eq(rd(0x070), 1 | 2 | 4 | 8, "status");
	wr(0x030, 0);
	cr_assert_eq(rd(0x044), 1, "queue ready");
	/* the third request lands in slot 2, as if nothing happened */
	offer(2, 16);
	wr(0x050, 0);
	cr_assert(wait_fd(fake.irq_fd), "the restored queue works");
	cr_assert_eq(used_idx(), 3);
	struct vring_used *u = gpa(USED_GPA);
	cr_assert_eq(u->ring[2].id, 2);
	cr_assert_eq(u->ring[2].len, 16);

	/* and the saved state of the restored device is the same bytes */
	devices_pause(&vm);
	void *again = NULL;
	size_t len2;
	cr_assert_eq(virtio_rng_kind.save(t, &again, &len2, &err), 0);
	cr_assert_eq(len2, len);
	devices_resume(&vm);
	free(again);
	free(blob);
	free(ram);
}

/* Field offsets in the rng's blob (see mmio.c): version, device_id, status, isr, two
 * feature selects, queue_sel (4 each), driver features (8), nqueues (4), then the queue:
 * num (2), ready (1), desc, avail, used (8 each), last_avail, used_idx, signalled (2),
 * the device's part's length (4). */
#define OFF_VERSION 0
#define OFF_DEVICE_ID 4
#define OFF_STATUS 8
#define OFF_ISR 12
#define OFF_FEATURES 28
#define OFF_NQUEUES 36
#define OFF_QNUM 40
#define OFF_QREADY 42
#define OFF_QDESC 43
#define OFF_QLAST 67

struct corruption {
	const char *what;
	size_t off;
	size_t n;
	uint64_t value;
	const char *expect;
};

Test(virtio_mmio, every_corrupt_rng_state_is_refused_and_changes_nothing)
{
	size_t len;
	uint8_t *ram;
	uint8_t *blob = save_running_rng(&len, &ram);
	cr_assert_eq(len, 77, "the layout the offsets above assume");
	static const struct corruption bad[] = {
	    {"version", OFF_VERSION, 4, 2, "format version 2"},
	    {"device", OFF_DEVICE_ID, 4, 2, "device_id 2"},
	    {"status", OFF_STATUS, 4, 0x100 | 0xf, "unknown bits"},
	    {"driver_ok", OFF_STATUS, 4, 1 | 2 | 4, "DRIVER_OK without FEATURES_OK"},
	    {"isr", OFF_ISR, 4, 8, "interrupt status"},
	    {"features", OFF_FEATURES, 8, 1ULL << 40 | 1ULL << 32, "not offered"},
	    {"nqueues", OFF_NQUEUES, 4, 2, "2 queues"},
	    {"size", OFF_QNUM, 2, 4096, "size 4096"},
	    {"not_pow2", OFF_QNUM, 2, 12, "power of two"},
	    {"ready", OFF_QREADY, 1, 2, "ready 2"},
	    {"desc", OFF_QDESC, 8, 0xfff00000ULL, "outside guest RAM"},
	    {"indices", OFF_QLAST, 2, 200, "indices"},
	};
	struct virtio_mmio *t = fresh_vm(ram);
	uint8_t *copy = malloc(len + 1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(copy, blob, len);
		memcpy(copy + bad[i].off, &bad[i].value, bad[i].n);
		vs_err_t err = NULL;
		cr_assert_eq(virtio_rng_kind.restore(t, copy, len, &err), -1, "%s", bad[i].what);
		cr_assert(strstr(err->msg, bad[i].expect) && strstr(err->msg, "virtio-rng"),
			  "%s: %s", bad[i].what, err->msg);
		vs_err_free(&err);
		cr_assert_eq(rd(0x070), 0, "%s: nothing applied", bad[i].what);
	}
	/* truncated anywhere, or with bytes left over */
	for (size_t n = 0; n <= len + 1; n++) {
		if (n == len)
			continue;
		memcpy(copy, blob, len);
		copy[len] = 0;
		vs_err_t err = NULL;
		cr_assert_eq(virtio_rng_kind.restore(t, copy, n, &err), -1, "%zu bytes", n);
		vs_err_free(&err);
		cr_assert_eq(rd(0x070), 0);
	}
	vs_err_t err = NULL;
	cr_assert_eq(virtio_rng_kind.restore(t, blob, len, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(virtio_rng_kind.restore(t, blob, len, &err), -1, "only onto a fresh device");
	vs_err_free(&err);
	devices_resume(&vm);
	free(copy);
	free(blob);
	free(ram);
}

/* A disk's snapshot carries its backend's identity: the same file and size load, another
 * file or a resized one is refused, naming the drive. */
static void make_disk(char *path, off_t size)
{
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, size), 0);
	close(fd);
}

static struct virtio_mmio *add_disk(const char *path)
{
	struct blk_spec spec = {.path = (char *)path};
	vs_err_t err = NULL;
	cr_assert_eq(device_add(&vm, &virtio_blk_kind, &spec, &err), 0, "%s", err ? err->msg : "");
	return device_find(&vm, &virtio_blk_kind);
}

Test(virtio_mmio, blk_state_keeps_its_drive_and_refuses_another)
{
	char a[] = "/tmp/vessel-snapblk-XXXXXX", b[] = "/tmp/vessel-snapblk-XXXXXX";
	make_disk(a, 1 << 20);
	make_disk(b, 1 << 20);
	struct virtio_mmio *t = add_disk(a);
	driver_start(true);
	devices_pause(&vm);
	void *blob = NULL;
	size_t len;
	vs_err_t err = NULL;
	cr_assert_eq(virtio_blk_kind.save(t, &blob, &len, &err), 0, "%s", err ? err->msg : "");
	devices_resume(&vm);
	uint8_t *ram = malloc(RAM_KEEP);
	memcpy(ram, vm.mem.host, RAM_KEEP);

	/* another file of the same size */
	vm_destroy(&vm);
	setup();
	memcpy(vm.mem.host, ram, RAM_KEEP);
	t = add_disk(b);
	devices_pause(&vm);
	cr_assert_eq(virtio_blk_kind.restore(t, blob, len, &err), -1);
	cr_assert(strstr(err->msg, "the snapshot's drive was") && strstr(err->msg, a), "%s",
		  err->msg);
	vs_err_free(&err);
	cr_assert_eq(rd(0x070), 0, "nothing applied");
	devices_resume(&vm);

	/* the same file, grown */
	vm_destroy(&vm);
	setup();
	memcpy(vm.mem.host, ram, RAM_KEEP);
	cr_assert_eq(truncate(a, 2 << 20), 0);
	t = add_disk(a);
	devices_pause(&vm);
	cr_assert_eq(virtio_blk_kind.restore(t, blob, len, &err), -1);
	cr_assert(strstr(err->msg, "size 4096 sectors, the snapshot's was 2048"), "%s", err->msg);
	vs_err_free(&err);
	devices_resume(&vm);

	/* the same file at its size: restored and running */
	vm_destroy(&vm);
	setup();
	memcpy(vm.mem.host, ram, RAM_KEEP);
	cr_assert_eq(truncate(a, 1 << 20), 0);
	t = add_disk(a);
	devices_pause(&vm);
	cr_assert_eq(virtio_blk_kind.restore(t, blob, len, &err), 0, "%s", err ? err->msg : "");
	devices_resume(&vm);
	cr_assert_eq(rd(0x070), 1 | 2 | 4 | 8);
	cr_assert_eq(rd(0x008), VIRTIO_ID_BLOCK);
	free(blob);
	free(ram);
	unlink(a);
	unlink(b);
}

static bool page_marked(const uint64_t *bits, uint64_t gpa)
{
	uint64_t pg = gpa / 4096;
	return bits[pg / 64] & (1ULL << (pg % 64));
}

/* The pages the device wrote (the buffer it filled, the used ring) are in the VMM's dirty
 * bitmap; the ones it only read (descriptors, avail ring) are not. */
Test(virtio_mmio, the_device_marks_the_pages_it_writes)
{
	add_rng();
	vs_err_t err = NULL;
	cr_assert_eq(guest_mem_track_dirty(&vm.mem, true, &err), 0, "%s", err ? err->msg : "");
	driver_start(true);
	size_t words = (guest_mem_npages(&vm.mem) + 63) / 64;
	uint64_t *bits = calloc(words, sizeof(*bits));
	guest_mem_take_dirty(&vm.mem, bits);
	memset(bits, 0, words * sizeof(*bits));
	offer(0, 64);
	wr(0x050, 0);
	cr_assert(wait_fd(fake.irq_fd));
	guest_mem_take_dirty(&vm.mem, bits);
	cr_assert(page_marked(bits, BUF_GPA), "the filled buffer");
	cr_assert(page_marked(bits, USED_GPA), "the used ring");
	cr_assert_not(page_marked(bits, DESC_GPA), "descriptors are only read");
	cr_assert_not(page_marked(bits, AVAIL_GPA), "the avail ring is only read");
	cr_assert_not(page_marked(bits, BUF_GPA + 0x1000), "the next buffer was not offered");
	free(bits);
}

/* A read of n sectors at sector 0 as the request in descriptors 3k..3k+2 (header, data,
 * status), made available as the k-th request. */
static void offer_read(uint16_t k, uint32_t sectors)
{
	struct vring_desc *d = gpa(DESC_GPA);
	struct vring_avail *a = gpa(AVAIL_GPA);
	uint64_t base = BUF_GPA + k * 0x4000ULL;
	struct {
		uint32_t type, reserved;
		uint64_t sector;
	} hdr = {0, 0, 0}; /* VIRTIO_BLK_T_IN */
	memcpy(gpa(base), &hdr, sizeof(hdr));
	*(uint8_t *)gpa(base + 0x3000) = 0xff; /* the status the device must write */
	uint16_t h = (uint16_t)(3 * k);
	d[h] = (struct vring_desc){.addr = base, .len = sizeof(hdr), .flags = VRING_DESC_F_NEXT,
				   .next = (uint16_t)(h + 1)};
	d[h + 1] = (struct vring_desc){.addr = base + 0x1000,
				       .len = sectors * 512,
				       .flags = VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
				       .next = (uint16_t)(h + 2)};
	d[h + 2] = (struct vring_desc){.addr = base + 0x3000, .len = 1, .flags = VRING_DESC_F_WRITE};
	a->ring[k] = h;
	__atomic_store_n(&a->idx, (uint16_t)(k + 1), __ATOMIC_RELEASE);
}

/* A VM freed while paused (the source of a migration) never looks at its queues again:
 * after a local migration its RAM is the destination's, where the guest runs on. */
Test(virtio_mmio, a_device_freed_while_paused_answers_nothing)
{
	add_rng();
	driver_start(true);
	devices_pause(&vm);
	offer(0, 64); /* the guest, running elsewhere now, posts and kicks */
	uint64_t one = 1;
	cr_assert_eq(write(fake.bells[0].fd, &one, sizeof(one)), (ssize_t)sizeof(one));
	devices_free(&vm);
	cr_assert_eq(used_idx(), 0, "the freed device answered a request");
	static const uint8_t zero[64];
	cr_assert_eq(memcmp(gpa(BUF_GPA), zero, 64), 0, "and wrote into the guest's buffer");
}

/* A request held for rate-limit tokens is off the ring: a pause (before a snapshot or a
 * migration saves the queue) must answer it, or the restored guest waits for it for ever. */
Test(virtio_mmio, a_pause_answers_a_disk_request_held_by_the_rate_limiter)
{
	char path[] = "/tmp/vessel-rlblk-XXXXXX";
	make_disk(path, 1 << 20);
	char specs[128];
	snprintf(specs, sizeof(specs), "%s,bw=1K", path);
	struct blk_spec spec;
	vs_err_t err = NULL;
	cr_assert_eq(blk_spec_parse(specs, &spec, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(device_add(&vm, &virtio_blk_kind, &spec, &err), 0, "%s", err ? err->msg : "");
	blk_spec_free(&spec);
	driver_start(true);
	offer_read(0, 1); /* 512 bytes: the full bucket pays */
	wr(0x050, 0);
	cr_assert(wait_fd(fake.irq_fd), "the first read");
	cr_assert_eq(used_idx(), 1);
	/* 1 KiB, the bucket's size, with 512 bytes left: held for about half a second (one
	 * larger than the bucket would go at once, into debt, as Firecracker's does) */
	offer_read(1, 2);
	wr(0x050, 0);
	usleep(100000);
	cr_assert_eq(used_idx(), 1, "the second read went before its tokens");
	devices_pause(&vm);
	cr_assert_eq(used_idx(), 2, "the held read was left off the ring by the pause");
	cr_assert_eq(*(uint8_t *)gpa(BUF_GPA + 0x4000 + 0x3000), 0, "its status: OK");
	devices_resume(&vm);
	unlink(path);
}

/* The same for a frame the guest sends: held for tokens, it goes at the pause. */
Test(virtio_mmio, a_pause_sends_a_frame_held_by_the_rate_limiter)
{
	char specs[64];
	snprintf(specs, sizeof(specs), "tap=vsq%d,bw=1K", (int)(getpid() % 100000));
	struct net_spec spec;
	vs_err_t err = NULL;
	cr_assert_eq(net_spec_parse(specs, &spec, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(device_add(&vm, &virtio_net_kind, &spec, &err), 0, "%s", err ? err->msg : "");
	/* both queues: receive (0) on the usual rings, transmit (1) on its own */
	const uint64_t tx_desc = 0x30000, tx_avail = 0x31000, tx_used = 0x32000;
	wr(0x070, 0);
	wr(0x070, 1 | 2);
	wr(0x024, 1);
	wr(0x020, 1); /* VERSION_1 */
	wr(0x070, 1 | 2 | 8);
	const uint64_t rings[2][3] = {{DESC_GPA, AVAIL_GPA, USED_GPA}, {tx_desc, tx_avail, tx_used}};
	for (unsigned q = 0; q < 2; q++) {
		wr(0x030, q);
		wr(0x038, QSIZE);
		wr(0x080, (uint32_t)rings[q][0]);
		wr(0x090, (uint32_t)rings[q][1]);
		wr(0x0a0, (uint32_t)rings[q][2]);
		wr(0x044, 1);
	}
	wr(0x070, 1 | 2 | 8 | 4);
	cr_assert_eq(rd(0x070) & 0x40, 0, "the device does not need a reset");
	struct vring_desc *d = gpa(tx_desc);
	struct vring_avail *a = gpa(tx_avail);
	struct vring_used *u = gpa(tx_used);
	for (uint16_t k = 0; k < 2; k++) {
		/* the header and a 1000-byte frame: the first leaves 24 bytes in the 1 KiB
		 * bucket, the second waits for about a second */
		uint64_t buf = BUF_GPA + k * 0x1000ULL;
		memset(gpa(buf), 0, 12 + 1000);
		memset(gpa(buf + 12), 0xff, 6); /* broadcast */
		d[k] = (struct vring_desc){.addr = buf, .len = 12 + 1000};
		a->ring[k] = k;
		__atomic_store_n(&a->idx, (uint16_t)(k + 1), __ATOMIC_RELEASE);
		wr(0x050, 1);
		usleep(100000);
	}
	cr_assert_eq(__atomic_load_n(&u->idx, __ATOMIC_ACQUIRE), 1,
		     "the second frame went before its tokens");
	devices_pause(&vm);
	cr_assert_eq(__atomic_load_n(&u->idx, __ATOMIC_ACQUIRE), 2,
		     "the held frame was left off the ring by the pause");
	devices_resume(&vm);
}

/* Every slot's pin is its own: none of the legacy devices' (a fourth virtio device used to
 * get the RTC's 8), none shared, all below the GED's. */
Test(virtio_mmio, slots_never_take_a_legacy_pin)
{
	unsigned seen[64] = {0};
	for (unsigned i = 0; i < VIRTIO_MMIO_MAX_DEVICES; i++) {
		struct acpi_virtio_mmio s;
		virtio_mmio_slot(i, &s);
		cr_assert(s.gsi != RTC_IRQ && s.gsi != I8042_AUX_IRQ && s.gsi != I8042_KBD_IRQ &&
			      s.gsi != COM1_IRQ,
			  "slot %u: pin %u", i, s.gsi);
		cr_assert_lt(s.gsi, GED_GSI, "slot %u", i);
		cr_assert_eq(seen[s.gsi]++, 0, "pin %u twice", s.gsi);
	}
	struct acpi_virtio_mmio s;
	virtio_mmio_slot(3, &s);
	cr_assert_eq(s.gsi, 9);
}
