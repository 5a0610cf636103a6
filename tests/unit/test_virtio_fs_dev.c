/* The virtio-fs device on a detached VM (no /dev/kvm), the test playing both the guest's
 * driver (through the MMIO registers and KVM's doorbells, as test_virtio_balloon.c does)
 * and virtiofsd (a thread on a Unix socket that records every message and the fds it
 * carries, and answers the GET_* ones, rightly or wrongly as a test asks). */
#include <criterion/criterion.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/bus.h"
#include "vmm/layout.h"
#include "vmm/virtio/fs.h"
#include "vmm/virtio/fs_spec.h"
#include "vmm/virtio/vhost_user.h"
#include "vmm/virtio/virtio.h"
#include "vmm/vm.h"

#include "fake_kvm.h"

#define RAM (8ULL << 20)
#define QSIZE 16
#define QBASE(qi) (0x10000ULL + (qi)*0x4000ULL)
#define MAXMSG 64

/* ---- the fake back-end ---- */

struct msg {
	uint32_t req, size;
	uint8_t payload[VHU_MAX_PAYLOAD];
	int fds[VHU_MAX_REGIONS];
	unsigned nfds;
};

static struct backend {
	char path[108];
	int listen_fd, conn;
	pthread_t thread;
	pthread_mutex_t lock;
	struct msg msgs[MAXMSG];
	unsigned n;
	uint64_t features;	   /* GET_FEATURES's answer */
	uint32_t base_index_delta; /* GET_VRING_BASE answers for ring index + this */
	bool hang_up_after_owner;  /* close the connection after SET_OWNER */
} be;

static void *backend_main(void *arg)
{
	(void)arg;
	be.conn = accept(be.listen_fd, NULL, NULL);
	while (be.conn >= 0) {
		struct msg m = {0};
		uint8_t hdr[VHU_HDR_SIZE];
		union {
			char buf[CMSG_SPACE(sizeof(int) * VHU_MAX_REGIONS)];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = {hdr, sizeof(hdr)};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = ctl.buf,
				    .msg_controllen = sizeof(ctl.buf)};
		if (recvmsg(be.conn, &mh, MSG_WAITALL) != VHU_HDR_SIZE)
			break;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_type == SCM_RIGHTS) {
				m.nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
				memcpy(m.fds, CMSG_DATA(c), m.nfds * sizeof(int));
			}
		memcpy(&m.req, hdr, 4);
		memcpy(&m.size, hdr + 8, 4);
		if (m.size > VHU_MAX_PAYLOAD ||
		    (m.size && recv(be.conn, m.payload, m.size, MSG_WAITALL) != (ssize_t)m.size))
			break;
		pthread_mutex_lock(&be.lock);
		if (be.n < MAXMSG)
			be.msgs[be.n++] = m;
		pthread_mutex_unlock(&be.lock);
		uint8_t r[VHU_HDR_SIZE + 8];
		uint32_t flags = VHU_VERSION | VHU_FLAG_REPLY, eight = 8;
		memcpy(r, &m.req, 4);
		memcpy(r + 4, &flags, 4);
		memcpy(r + 8, &eight, 4);
		if (m.req == VHU_GET_FEATURES) {
			memcpy(r + 12, &be.features, 8);
			if (write(be.conn, r, sizeof(r)) != sizeof(r))
				break;
		} else if (m.req == VHU_GET_VRING_BASE) {
			uint32_t index, base = 5;
			memcpy(&index, m.payload, 4);
			index += be.base_index_delta;
			memcpy(r + 12, &index, 4);
			memcpy(r + 16, &base, 4);
			if (write(be.conn, r, sizeof(r)) != sizeof(r))
				break;
		} else if (m.req == VHU_SET_OWNER && be.hang_up_after_owner) {
			break;
		}
	}
	if (be.conn >= 0)
		close(be.conn);
	be.conn = -1;
	return NULL;
}

static unsigned nmsgs(void)
{
	pthread_mutex_lock(&be.lock);
	unsigned n = be.n;
	pthread_mutex_unlock(&be.lock);
	return n;
}

static bool wait_msgs(unsigned want)
{
	for (int i = 0; i < 500 && nmsgs() < want; i++)
		usleep(10000);
	return nmsgs() >= want;
}

/* ---- the VM ---- */

static struct fake fake;
static struct vm vm;

static void setup(void)
{
	fake_vm_create(&vm, &fake, RAM);
	/* what the builder does for a kind with shares_ram */
	vs_err_t err = NULL;
	guest_mem_unmap(&vm.mem);
	cr_assert_eq(guest_mem_map(&vm.mem, RAM, GUEST_MEM_SHARED, &err), 0, "%s",
		     err ? err->msg : "");
	be = (struct backend){.listen_fd = -1, .conn = -1};
	pthread_mutex_init(&be.lock, NULL);
	be.features = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_RING_EVENT_IDX) |
		      (1ULL << VIRTIO_F_RING_INDIRECT_DESC) | (1ULL << VHU_F_PROTOCOL_FEATURES);
	snprintf(be.path, sizeof(be.path), "/tmp/vessel-fs-test-%d.sock", getpid());
	unlink(be.path);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strcpy(sa.sun_path, be.path);
	be.listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert_eq(bind(be.listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(be.listen_fd, 1), 0);
}

static void teardown(void)
{
	vm_destroy(&vm); /* closes the device's socket: the back-end sees EOF */
	pthread_join(be.thread, NULL);
	close(be.listen_fd);
	unlink(be.path);
	for (unsigned i = 0; i < be.n; i++)
		for (unsigned j = 0; j < be.msgs[i].nfds; j++)
			close(be.msgs[i].fds[j]);
}

TestSuite(fs_dev, .init = setup, .fini = teardown);

static uint32_t rd(uint64_t off)
{
	return fake_mmio_rd(&vm, off);
}

static void wr(uint64_t off, uint32_t v)
{
	fake_mmio_wr(&vm, off, v);
}

static int add(const char *tag, vs_err_t *err)
{
	pthread_create(&be.thread, NULL, backend_main, NULL);
	struct fs_spec s = {0};
	strcpy(s.tag, tag);
	strcpy(s.socket, be.path);
	return device_add(&vm, &virtio_fs_kind, &s, err);
}

static void driver_start(uint64_t desc0)
{
	wr(0x070, 0);
	wr(0x070, 1 | 2);
	wr(0x024, 0);
	wr(0x020, 1u << VIRTIO_F_RING_EVENT_IDX);
	wr(0x024, 1);
	wr(0x020, 1); /* VERSION_1 */
	wr(0x070, 1 | 2 | 8);
	cr_assert(rd(0x070) & 8, "FEATURES_OK kept");
	for (unsigned qi = 0; qi < 2; qi++) {
		uint64_t desc = qi == 0 ? desc0 : QBASE(qi);
		wr(0x030, qi);
		wr(0x038, QSIZE);
		wr(0x080, (uint32_t)desc);
		wr(0x084, (uint32_t)(desc >> 32));
		wr(0x090, (uint32_t)(QBASE(qi) + 0x1000));
		wr(0x0a0, (uint32_t)(QBASE(qi) + 0x2000));
		wr(0x044, 1);
	}
	wr(0x070, 1 | 2 | 8 | 4);
}

static uint64_t u64_of(const struct msg *m, size_t off)
{
	uint64_t v;
	memcpy(&v, m->payload + off, 8);
	return v;
}

static uint32_t u32_of(const struct msg *m, size_t off)
{
	uint32_t v;
	memcpy(&v, m->payload + off, 4);
	return v;
}

static bool same_file(int a, int b)
{
	struct stat x, y;
	return fstat(a, &x) == 0 && fstat(b, &y) == 0 && x.st_ino == y.st_ino &&
	       x.st_dev == y.st_dev;
}

static uint64_t host(uint64_t gpa)
{
	return (uint64_t)(uintptr_t)(vm.mem.host + gpa);
}

Test(fs_dev, config_space_holds_the_tag_and_one_request_queue)
{
	vs_err_t err = NULL;
	cr_assert_eq(add("share", &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(rd(0x008), 26);
	char tag[37] = {0};
	for (unsigned i = 0; i < 36; i++) {
		uint8_t b;
		cr_assert(bus_access(&vm.mmio, LAYOUT_VIRTIO_MMIO + 0x100 + i, &b, 1, false));
		tag[i] = (char)b;
	}
	cr_assert_str_eq(tag, "share");
	cr_assert_eq(rd(0x100 + 36), 1);
	cr_assert_eq(rd(0x0b0), 0xffffffff, "a shared memory region length other than -1");
	cr_assert(wait_msgs(2));
	cr_assert_eq(be.msgs[0].req, VHU_GET_FEATURES);
	cr_assert_eq(be.msgs[1].req, VHU_SET_OWNER);
}

Test(fs_dev, driver_ok_hands_over_memory_rings_and_eventfds)
{
	vs_err_t err = NULL;
	cr_assert_eq(add("share", &err), 0, "%s", err ? err->msg : "");
	driver_start(QBASE(0));
	/* GET_FEATURES SET_OWNER SET_FEATURES SET_MEM_TABLE, then 5 a ring */
	cr_assert(wait_msgs(4 + 10), "%u messages", nmsgs());
	struct msg *m = be.msgs;
	cr_assert_eq(m[2].req, VHU_SET_FEATURES);
	cr_assert_eq(u64_of(&m[2], 0),
		     (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_RING_EVENT_IDX),
		     "what the driver took, and never PROTOCOL_FEATURES");
	cr_assert_eq(m[3].req, VHU_SET_MEM_TABLE);
	cr_assert_eq(u32_of(&m[3], 0), 1, "8 MiB: one region");
	cr_assert_eq(u64_of(&m[3], 8), 0);
	cr_assert_eq(u64_of(&m[3], 16), RAM);
	cr_assert_eq(u64_of(&m[3], 24), host(0));
	cr_assert_eq(u64_of(&m[3], 32), 0);
	cr_assert_eq(m[3].nfds, 1);
	cr_assert(same_file(m[3].fds[0], vm.mem.fd), "the fd is not guest RAM's memfd");
	for (unsigned qi = 0; qi < 2; qi++) {
		struct msg *q = &m[4 + 5 * qi];
		cr_assert_eq(q[0].req, VHU_SET_VRING_NUM);
		cr_assert_eq(u32_of(&q[0], 0), qi);
		cr_assert_eq(u32_of(&q[0], 4), QSIZE);
		cr_assert_eq(q[1].req, VHU_SET_VRING_BASE);
		cr_assert_eq(u32_of(&q[1], 4), 0);
		cr_assert_eq(q[2].req, VHU_SET_VRING_ADDR);
		cr_assert_eq(u32_of(&q[2], 0), qi);
		cr_assert_eq(u64_of(&q[2], 8), host(QBASE(qi)), "desc");
		cr_assert_eq(u64_of(&q[2], 16), host(QBASE(qi) + 0x2000), "used");
		cr_assert_eq(u64_of(&q[2], 24), host(QBASE(qi) + 0x1000), "avail");
		cr_assert_eq(q[3].req, VHU_SET_VRING_CALL);
		cr_assert_eq(q[3].nfds, 1);
		cr_assert_eq(q[4].req, VHU_SET_VRING_KICK);
		cr_assert_eq(u64_of(&q[4], 0), qi);
		cr_assert_eq(q[4].nfds, 1);
		/* the kick is the doorbell KVM signals for QueueNotify = qi */
		bool found = false;
		for (unsigned b = 0; b < fake.nbells; b++)
			if (fake.bells[b].data == qi) {
				found = true;
				cr_assert(same_file(q[4].fds[0], fake.bells[b].fd));
			}
		cr_assert(found);
	}
	cr_assert_eq(rd(0x070) & 0x40, 0, "the device failed");
}

Test(fs_dev, a_guest_kick_reaches_the_backend_and_its_call_the_interrupt_status)
{
	vs_err_t err = NULL;
	cr_assert_eq(add("share", &err), 0, "%s", err ? err->msg : "");
	driver_start(QBASE(0));
	cr_assert(wait_msgs(14));
	int kick = be.msgs[4 + 5 + 4].fds[0], call = be.msgs[4 + 5 + 3].fds[0];
	uint64_t one = 1, v = 0;
	fake_kick(&fake, 1);
	usleep(50000); /* the worker had its chance to take it */
	struct pollfd p = {.fd = kick, .events = POLLIN};
	cr_assert_eq(poll(&p, 1, 1000), 1, "the kick did not reach the back-end");
	cr_assert_eq(read(kick, &v, 8), 8);
	cr_assert_eq(rd(0x060), 0);
	cr_assert_eq(write(call, &one, 8), 8);
	for (int i = 0; i < 200 && !(rd(0x060) & 1); i++)
		usleep(5000);
	cr_assert_eq(rd(0x060), 1, "InterruptStatus has no used-buffer bit after the call");
	struct pollfd irq = {.fd = fake.irq_fd, .events = POLLIN};
	cr_assert_eq(poll(&irq, 1, 1000), 1, "no interrupt raised");
	wr(0x064, 1);
	cr_assert_eq(rd(0x060), 0);
}

Test(fs_dev, a_reset_stops_each_ring_and_a_wrong_answer_is_survived)
{
	vs_err_t err = NULL;
	cr_assert_eq(add("share", &err), 0, "%s", err ? err->msg : "");
	driver_start(QBASE(0));
	cr_assert(wait_msgs(14));
	be.base_index_delta = 1; /* ring 0 is answered as ring 1, ring 1 as 2 */
	wr(0x070, 0);
	cr_assert(wait_msgs(16));
	cr_assert_eq(be.msgs[14].req, VHU_GET_VRING_BASE);
	cr_assert_eq(u32_of(&be.msgs[14], 0), 0);
	cr_assert_eq(be.msgs[15].req, VHU_GET_VRING_BASE);
	cr_assert_eq(u32_of(&be.msgs[15], 0), 1);
	cr_assert_eq(rd(0x070), 0);
	/* and the device starts again, everything sent afresh */
	be.base_index_delta = 0;
	driver_start(QBASE(0));
	cr_assert(wait_msgs(16 + 12));
	cr_assert_eq(be.msgs[16].req, VHU_SET_FEATURES);
	cr_assert_eq(be.msgs[17].req, VHU_SET_MEM_TABLE);
	cr_assert_eq(rd(0x070) & 0x40, 0);
}

Test(fs_dev, rings_outside_ram_reach_no_backend)
{
	vs_err_t err = NULL;
	cr_assert_eq(add("share", &err), 0, "%s", err ? err->msg : "");
	driver_start(RAM - 0x10); /* queue 0's descriptors run past the end of RAM */
	cr_assert(rd(0x070) & 0x40, "the device took rings outside RAM");
	usleep(50000);
	for (unsigned i = 0; i < nmsgs(); i++)
		cr_assert_neq(be.msgs[i].req, VHU_SET_VRING_ADDR);
}

Test(fs_dev, a_backend_without_event_idx_is_refused)
{
	be.features = 1ULL << VIRTIO_F_VERSION_1;
	vs_err_t err = NULL;
	cr_assert_eq(add("share", &err), -1);
	cr_assert(strstr(err->msg, "lack VERSION_1, EVENT_IDX or INDIRECT_DESC"), "%s", err->msg);
	vs_err_free(&err);
}

Test(fs_dev, the_backend_going_away_fails_the_device)
{
	vs_err_t err = NULL;
	cr_assert_eq(add("share", &err), 0, "%s", err ? err->msg : "");
	driver_start(QBASE(0));
	cr_assert(wait_msgs(14));
	shutdown(be.conn, SHUT_RDWR);
	for (int i = 0; i < 200 && !(rd(0x070) & 0x40); i++)
		usleep(5000);
	cr_assert(rd(0x070) & 0x40, "no NEEDS_RESET after virtiofsd went");
}
