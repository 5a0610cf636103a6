/* virtio-rng without a VM: the --rng spec and Firecracker's EntropyDevice object
 * (rng_spec.c), and the device on a detached VM with a rate limit, the test playing the
 * guest's driver through the MMIO registers and KVM's doorbells (as test_virtio_balloon.c
 * does). */
#include <criterion/criterion.h>
#include <linux/virtio_ring.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmm/layout.h"
#include "vmm/virtio/rng.h"
#include "vmm/virtio/rng_spec.h"
#include "vmm/virtio/virtio.h"
#include "vmm/vm.h"

#include "fake_kvm.h"

#define RAM (8ULL << 20)

Test(rng_spec, rate_keys_as_net_spells_them)
{
	struct rng_spec s;
	vs_err_t err = NULL;
	cr_assert_eq(rng_spec_parse("bw=4K,ops=10,bw_burst=1M,ops_burst=5", &s, &err), 0, "%s",
		     err ? err->msg : "");
	cr_assert_eq(s.rl.bw.size, 4096);
	cr_assert_eq(s.rl.bw.one_time_burst, 1 << 20);
	cr_assert_eq(s.rl.ops.size, 10);
	cr_assert_eq(s.rl.ops.one_time_burst, 5);
	cr_assert_eq(rng_spec_parse("ops=1", &s, &err), 0);
	cr_assert(tb_unlimited(&s.rl.bw));
	static const char *const bad[] = {"",	     "bw",	   "bw=",    "bw=0", "iops=3",
					  "bw=1K,,", "bw_burst=1", "ops=-1", "x=1",  "bw=1K\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(rng_spec_parse(bad[i], &s, &err), -1, "`%s` taken", bad[i]);
		cr_assert_not_null(err);
		cr_assert_null(strchr(err->msg, '\n'), "%s", err->msg);
		vs_err_free(&err);
	}
}

Test(rng_spec, a_following_word_is_a_spec_only_by_its_key)
{
	cr_assert(rng_spec_looks_like("bw=4K"));
	cr_assert(rng_spec_looks_like("ops=1,bw=1M"));
	cr_assert(rng_spec_looks_like("ops_burst=2"));
	cr_assert_not(rng_spec_looks_like("/srv/vm"));
	cr_assert_not(rng_spec_looks_like("bwx=1"));
	cr_assert_not(rng_spec_looks_like("--disk"));
	cr_assert_not(rng_spec_looks_like(""));
}

Test(rng_spec, json_is_firecrackers_entropy_device)
{
	struct rng_spec s;
	vs_err_t err = NULL;
	json_t *o = json_loads("{\"rate_limiter\": {\"bandwidth\": {\"size\": 100, "
			       "\"refill_time\": 250}}}",
			       0, NULL);
	cr_assert_eq(rng_spec_from_json(o, &s, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(s.rl.bw.size, 100);
	cr_assert_eq(s.rl.bw.refill_time_ms, 250);
	cr_assert(tb_unlimited(&s.rl.ops));
	json_decref(o);
	o = json_loads("{}", 0, NULL);
	cr_assert_eq(rng_spec_from_json(o, &s, &err), 0);
	cr_assert(rl_unlimited(&s.rl));
	json_decref(o);
	o = json_loads("{\"rate_limiter\": 3}", 0, NULL);
	cr_assert_eq(rng_spec_from_json(o, &s, &err), -1);
	cr_assert(strstr(err->msg, "rate_limiter"), "%s", err->msg);
	vs_err_free(&err);
	json_decref(o);
}

/* ---- the device, the test as the guest's driver ---- */

static struct fake fake;
static struct vm vm;
static struct virtio_mmio *t;

static void setup(void)
{
	fake_vm_create(&vm, &fake, RAM);
}

static void teardown(void)
{
	vm_destroy(&vm);
}

TestSuite(rng_dev, .init = setup, .fini = teardown);

static uint32_t rd(uint64_t off)
{
	return fake_mmio_rd(&vm, off);
}

static void wr(uint64_t off, uint32_t v)
{
	fake_mmio_wr(&vm, off, v);
}

#define QSIZE 16
#define QBASE 0x10000ULL
#define BUF(n) (0x40000ULL + (uint64_t)((n) % QSIZE) * 0x10000ULL) /* 64 KiB each */

static void *gpa(uint64_t a)
{
	return vm.mem.host + a;
}

static void add(const char *spec)
{
	struct rng_spec s = {0};
	vs_err_t err = NULL;
	if (spec)
		cr_assert_eq(rng_spec_parse(spec, &s, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(device_add(&vm, &virtio_rng_kind, spec ? &s : NULL, &err), 0, "%s",
		     err ? err->msg : "");
	t = device_find(&vm, &virtio_rng_kind);
	cr_assert_eq(rd(0x008), VIRTIO_ID_RNG);
}

static void driver_start(void)
{
	wr(0x070, 0);
	/* fresh rings, as a driver allocates them: a worker woken by a timer left from before
	 * a reset would otherwise find the old avail index and descriptors */
	memset(gpa(QBASE), 0, 0x3000);
	wr(0x070, 1 | 2);
	wr(0x024, 1);
	wr(0x020, 1); /* VERSION_1 */
	wr(0x070, 1 | 2 | 8);
	cr_assert(rd(0x070) & 8, "FEATURES_OK kept");
	wr(0x030, 0);
	wr(0x038, QSIZE);
	wr(0x080, (uint32_t)QBASE);
	wr(0x090, (uint32_t)(QBASE + 0x1000));
	wr(0x0a0, (uint32_t)(QBASE + 0x2000));
	wr(0x044, 1);
	wr(0x070, 1 | 2 | 8 | 4);
}

/* The n-th request: one device-writable buffer of len bytes at BUF(n), zeroed. No kick. */
static void post(uint16_t n, uint32_t len)
{
	struct vring_desc *d = gpa(QBASE);
	struct vring_avail *a = gpa(QBASE + 0x1000);
	memset(gpa(BUF(n)), 0, len);
	d[n % QSIZE] = (struct vring_desc){.addr = BUF(n), .len = len, .flags = VRING_DESC_F_WRITE};
	a->ring[n % QSIZE] = n % QSIZE;
	__atomic_store_n(&a->idx, (uint16_t)(n + 1), __ATOMIC_RELEASE);
}

static uint16_t used_idx(void)
{
	struct vring_used *u = gpa(QBASE + 0x2000);
	return __atomic_load_n(&u->idx, __ATOMIC_ACQUIRE);
}

static uint32_t used_len(uint16_t n)
{
	struct vring_used *u = gpa(QBASE + 0x2000);
	return u->ring[n % QSIZE].len;
}

static double now_s(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits up to 5 s for the used index to reach want; returns the seconds it took. */
static double wait_used(uint16_t want)
{
	double t0 = now_s(CLOCK_MONOTONIC);
	while (used_idx() != want && now_s(CLOCK_MONOTONIC) - t0 < 5)
		usleep(2000);
	cr_assert_eq(used_idx(), want, "request %u not answered in 5 s", want - 1);
	return now_s(CLOCK_MONOTONIC) - t0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

Test(rng_dev, unlimited_answers_every_request_at_once)
{
	add(NULL);
	driver_start();
	for (uint16_t i = 0; i < 8; i++)
		post(i, 4096);
	fake_kick(&fake, 0);
	wait_used(8);
	for (uint16_t i = 0; i < 8; i++) {
		cr_assert_eq(used_len(i), 4096);
		cr_assert_not(all_zero(gpa(BUF(i)), 4096));
	}
}

/* bw=1K: the full bucket pays for the first KiB; the next request waits for the refill
 * and then gets all it asked for, and the worker sleeps meanwhile. */
Test(rng_dev, a_request_past_the_bandwidth_waits_and_is_answered_whole)
{
	add("bw=1K");
	driver_start();
	post(0, 1024);
	fake_kick(&fake, 0);
	wait_used(1);
	cr_assert_eq(used_len(0), 1024);

	double cpu0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
	post(1, 512);
	fake_kick(&fake, 0);
	usleep(200000);
	cr_assert_eq(used_idx(), 1, "answered before the bucket had 512 bytes again");
	cr_assert(all_zero(gpa(BUF(1)), 512), "written before it was answered");
	/* a kick meanwhile changes nothing and loses no wake */
	fake_kick(&fake, 0);
	double took = 0.2 + wait_used(2);
	cr_assert_eq(used_len(1), 512, "a short answer");
	cr_assert_not(all_zero(gpa(BUF(1)) + 256, 256));
	cr_assert_gt(took, 0.35, "512 bytes at 1 KiB/s came after %.2f s", took);
	cr_assert_lt(took, 3.0);
	double cpu = now_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
	cr_assert_lt(cpu, 0.25 * took, "%.2f s of CPU while waiting %.2f s: a busy loop", cpu,
		     took);
}

/* ops=2: two requests a second; the third waits, and the ones behind it stay on the ring. */
Test(rng_dev, requests_past_the_ops_limit_wait_in_order)
{
	add("ops=2");
	driver_start();
	for (uint16_t i = 0; i < 4; i++)
		post(i, 16);
	fake_kick(&fake, 0);
	wait_used(2);
	usleep(100000);
	cr_assert_eq(used_idx(), 2);
	double took = wait_used(4);
	cr_assert_gt(took, 0.5, "two more requests after %.2f s", took);
	struct vring_used *u = gpa(QBASE + 0x2000);
	for (uint16_t i = 0; i < 4; i++) {
		cr_assert_eq(u->ring[i].id, i, "answered out of order");
		cr_assert_eq(u->ring[i].len, 16);
	}
}

/* A pause must leave nothing popped (a snapshot would lose the request): the held one is
 * answered in full; a reset drops it with the ring. */
Test(rng_dev, a_pause_answers_the_held_request_and_a_reset_drops_it)
{
	add("bw=1K");
	driver_start();
	post(0, 1024);
	post(1, 1024);
	fake_kick(&fake, 0);
	wait_used(1);
	usleep(50000);
	cr_assert_eq(used_idx(), 1);
	virtio_mmio_pause(t);
	cr_assert_eq(used_idx(), 2, "the held request was still held after the pause");
	cr_assert_eq(used_len(1), 1024);
	virtio_mmio_resume(t);

	post(2, 1024);
	fake_kick(&fake, 0);
	usleep(50000);
	cr_assert_eq(used_idx(), 2, "held: the bucket owes");
	wr(0x070, 0); /* reset with it held */
	driver_start();
	post(0, 16);
	fake_kick(&fake, 0);
	wait_used(1);
	cr_assert_eq(used_len(0), 16, "the new ring's first request, not the old held one");
}
