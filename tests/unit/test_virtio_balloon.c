/* virtio-balloon without a VM: the PFN arrays and statistics buffers (balloon_spec.c), the
 * --balloon spec, and the device on a detached VM, the test playing the guest's driver
 * through the MMIO registers and KVM's doorbells (as test_virtio_mmio.c does). */
#include <criterion/criterion.h>
#include <linux/virtio_ring.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "vmm/layout.h"
#include "vmm/virtio/balloon.h"
#include "vmm/virtio/balloon_spec.h"
#include "vmm/virtio/virtio.h"
#include "vmm/vm.h"

#include "fake_kvm.h"

#define RAM (8ULL << 20)

static size_t parse(const uint32_t *pfns, size_t n, struct balloon_range *r, size_t max,
		    size_t *used, vs_err_t *err)
{
	size_t nout = 0;
	int rc = balloon_pfns_parse((const uint8_t *)pfns, n * 4, RAM, r, max, &nout, used, err);
	return rc < 0 ? (size_t)-1 : nout;
}

Test(balloon_spec, contiguous_pfns_become_one_run)
{
	uint32_t pfns[] = {0x100, 0x101, 0x102, 0x200, 0x10, 0x11};
	struct balloon_range r[8];
	size_t used;
	vs_err_t err = NULL;
	cr_assert_eq(parse(pfns, 6, r, 8, &used, &err), 3);
	cr_assert_eq(used, 24);
	cr_assert_eq(r[0].gpa, 0x100000);
	cr_assert_eq(r[0].len, 3 * 4096);
	cr_assert_eq(r[1].gpa, 0x200000);
	cr_assert_eq(r[2].gpa, 0x10000);
	cr_assert_eq(r[2].len, 2 * 4096);
}

Test(balloon_spec, a_full_run_table_stops_and_says_where)
{
	uint32_t pfns[] = {0x100, 0x300, 0x500};
	struct balloon_range r[2];
	size_t used;
	vs_err_t err = NULL;
	cr_assert_eq(parse(pfns, 3, r, 2, &used, &err), 2);
	cr_assert_eq(used, 8, "the third PFN is left for the next call");
}

static void pfn_refused(uint32_t pfn, const char *why)
{
	struct balloon_range r[1];
	size_t used;
	vs_err_t err = NULL;
	cr_assert_eq(parse(&pfn, 1, r, 1, &used, &err), (size_t)-1, "%s: PFN %#x taken", why, pfn);
	cr_assert(strstr(err->msg, "not guest RAM"), "%s", err->msg);
	vs_err_free(&err);
}

Test(balloon_spec, pfns_outside_ram_are_refused)
{
	pfn_refused(0x9f, "the page that straddles the end of low RAM (0x9fc00)");
	pfn_refused(0xa0, "the reserved area below 1 MiB");
	pfn_refused(LAYOUT_VMGENID >> 12, "the VM generation ID page");
	pfn_refused(LAYOUT_ACPI >> 12, "the ACPI tables");
	pfn_refused(RAM >> 12, "one past the end of RAM");
	pfn_refused(0xffffffff, "the top PFN");
	struct balloon_range r[1];
	size_t used;
	vs_err_t err = NULL;
	cr_assert_eq(
	    balloon_pfns_parse((const uint8_t *)"\0\1\0", 3, RAM, r, 1, &used, &used, &err), -1);
	cr_assert(strstr(err->msg, "multiple of 4"), "%s", err->msg);
	vs_err_free(&err);
}

Test(balloon_spec, ram_above_4g_is_ram_and_the_hole_is_not)
{
	uint64_t ram = LAYOUT_MMIO_HOLE + (64ULL << 20);
	cr_assert(balloon_range_is_ram(LAYOUT_4G, 4096, ram));
	cr_assert(balloon_range_is_ram(LAYOUT_4G + (64ULL << 20) - 4096, 4096, ram));
	cr_assert_not(balloon_range_is_ram(LAYOUT_4G + (64ULL << 20), 4096, ram));
	cr_assert_not(balloon_range_is_ram(LAYOUT_MMIO_HOLE, 4096, ram));
	cr_assert_not(balloon_range_is_ram(LAYOUT_MMIO_HOLE - 4096, 8192, ram), "across the hole");
}

Test(balloon_spec, stats_known_tags_kept_unknown_skipped)
{
	uint8_t b[3 * BALLOON_STAT_SIZE] = {0};
	b[0] = BALLOON_S_MEMTOT;
	b[2] = 0x00, b[3] = 0x10; /* 4096 */
	b[10] = 42;		  /* an unknown tag */
	b[12] = 1;
	b[20] = BALLOON_S_AVAIL;
	b[22] = 7;
	struct balloon_stats s = {0};
	vs_err_t err = NULL;
	cr_assert_eq(balloon_stats_parse(b, sizeof(b), &s, &err), 0);
	cr_assert_eq(s.have, (1u << BALLOON_S_MEMTOT) | (1u << BALLOON_S_AVAIL));
	cr_assert_eq(s.val[BALLOON_S_MEMTOT], 4096);
	cr_assert_eq(s.val[BALLOON_S_AVAIL], 7);
	cr_assert_eq(balloon_stats_parse(b, 9, &s, &err), -1);
	vs_err_free(&err);
	cr_assert_str_eq(balloon_stat_names[BALLOON_S_AVAIL], "available_memory");
}

Test(balloon_spec, queue_roles_follow_the_features)
{
	uint64_t stats = 1ULL << VIRTIO_BALLOON_F_STATS_VQ,
		 rep = 1ULL << VIRTIO_BALLOON_F_REPORTING;
	cr_assert_eq(balloon_queue_role(2, 0), BQ_NONE);
	cr_assert_eq(balloon_queue_role(2, stats), BQ_STATS);
	cr_assert_eq(balloon_queue_role(2, rep), BQ_REPORTING);
	cr_assert_eq(balloon_queue_role(3, stats | rep), BQ_REPORTING);
	cr_assert_eq(balloon_num_queues(stats | rep), 4);
}

Test(balloon_spec, cli_spec)
{
	struct balloon_config c;
	vs_err_t err = NULL;
	cr_assert_eq(
	    balloon_config_parse("amount=64,deflate_on_oom,stats=5,free_page_reporting", &c, &err),
	    0);
	cr_assert(c.amount_mib == 64 && c.deflate_on_oom && c.stats_s == 5 && c.reporting);
	const char *bad[] = {
	    "",		 "stats=1",	      "amount=", "amount=-1", "amount=1,deflate_on_oom=1",
	    "amount=1,", "amount=99999999999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(balloon_config_parse(bad[i], &c, &err), -1, "`%s` taken", bad[i]);
		vs_err_free(&err);
	}
}

/* ---- the device, the test as the guest's driver ---- */

static struct fake fake;
static struct vm vm;
static void *dev;

static void setup(void)
{
	fake_vm_create(&vm, &fake, RAM);
}

static void teardown(void)
{
	vm_destroy(&vm);
}

TestSuite(balloon_dev, .init = setup, .fini = teardown);

static uint32_t rd(uint64_t off)
{
	return fake_mmio_rd(&vm, off);
}

static void wr(uint64_t off, uint32_t v)
{
	fake_mmio_wr(&vm, off, v);
}

#define QSIZE 16
#define QBASE(qi) (0x10000ULL + (qi)*0x4000ULL)
#define BUF(qi) (0x40000ULL + (qi)*0x1000ULL)

static void *gpa(uint64_t a)
{
	return vm.mem.host + a;
}

static void add(const char *spec)
{
	struct balloon_config c;
	vs_err_t err = NULL;
	cr_assert_eq(balloon_config_parse(spec, &c, &err), 0);
	cr_assert_eq(device_add(&vm, &virtio_balloon_kind, &c, &err), 0, "%s", err ? err->msg : "");
	dev = device_find(&vm, &virtio_balloon_kind);
	cr_assert_eq(rd(0x008), VIRTIO_ID_BALLOON);
}

static void driver_start(uint32_t features, unsigned nq)
{
	wr(0x070, 0);
	wr(0x070, 1 | 2);
	wr(0x024, 0);
	wr(0x020, features);
	wr(0x024, 1);
	wr(0x020, 1); /* VERSION_1 */
	wr(0x070, 1 | 2 | 8);
	cr_assert(rd(0x070) & 8, "FEATURES_OK kept");
	for (unsigned qi = 0; qi < nq; qi++) {
		wr(0x030, qi);
		wr(0x038, QSIZE);
		wr(0x080, (uint32_t)QBASE(qi));
		wr(0x090, (uint32_t)(QBASE(qi) + 0x1000));
		wr(0x0a0, (uint32_t)(QBASE(qi) + 0x2000));
		wr(0x044, 1);
	}
	wr(0x070, 1 | 2 | 8 | 4);
}

/* n-th request on queue qi: one device-readable buffer of len bytes at BUF(qi) */
static void offer(unsigned qi, uint16_t n, uint32_t len)
{
	struct vring_desc *d = gpa(QBASE(qi));
	struct vring_avail *a = gpa(QBASE(qi) + 0x1000);
	d[n % QSIZE] = (struct vring_desc){.addr = BUF(qi), .len = len};
	a->ring[n % QSIZE] = n % QSIZE;
	__atomic_store_n(&a->idx, (uint16_t)(n + 1), __ATOMIC_RELEASE);
	fake_kick(&fake, qi);
}

static uint16_t used_idx(unsigned qi)
{
	struct vring_used *u = gpa(QBASE(qi) + 0x2000);
	return __atomic_load_n(&u->idx, __ATOMIC_ACQUIRE);
}

static bool wait_used(unsigned qi, uint16_t want)
{
	for (int i = 0; i < 500 && used_idx(qi) != want; i++)
		usleep(10000);
	return used_idx(qi) == want;
}

Test(balloon_dev, inflate_drops_the_pages_and_config_space_talks)
{
	add("amount=2");
	cr_assert_eq(rd(0x100), 2 * 256, "num_pages: 2 MiB in 4 KiB pages");
	driver_start(0, 2);
	uint8_t *page = gpa(0x300000);
	memset(page, 0xab, 2 * 4096);
	uint32_t *pfns = gpa(BUF(0));
	pfns[0] = 0x300;
	pfns[1] = 0x301;
	offer(0, 0, 8);
	cr_assert(wait_used(0, 1), "the inflate request was not answered");
	cr_assert_eq(page[0], 0, "the inflated page still holds the guest's bytes");
	cr_assert_eq(page[4096 + 100], 0);
	wr(0x104, 2); /* actual */
	cr_assert_eq(rd(0x104), 2);

	vs_err_t err = NULL;
	uint32_t isr_before = rd(0x060);
	(void)isr_before;
	cr_assert_eq(balloon_set_target(dev, 6, &err), 0);
	cr_assert_eq(rd(0x100), 6 * 256);
	cr_assert(rd(0x060) & 2, "no configuration-change interrupt");
	cr_assert_eq(balloon_set_target(dev, 9, &err), -1, "above the 8 MiB of RAM");
	cr_assert(strstr(err->msg, "amount_mib 9"), "%s", err->msg);
	vs_err_free(&err);
}

Test(balloon_dev, a_pfn_outside_ram_breaks_only_the_balloon)
{
	add("amount=0");
	driver_start(0, 2);
	uint32_t *pfns = gpa(BUF(0));
	pfns[0] = LAYOUT_ACPI >> 12;
	offer(0, 0, 4);
	for (int i = 0; i < 500 && !(rd(0x070) & 0x40); i++)
		usleep(10000);
	cr_assert(rd(0x070) & 0x40, "DEVICE_NEEDS_RESET not set");
	cr_assert_eq(used_idx(0), 0);
}

Test(balloon_dev, stats_buffer_is_kept_and_given_back_on_request)
{
	add("amount=0,stats=60");
	driver_start(1u << VIRTIO_BALLOON_F_STATS_VQ, 3);
	uint8_t *b = gpa(BUF(2));
	memset(b, 0, 2 * BALLOON_STAT_SIZE);
	b[0] = BALLOON_S_MEMTOT;
	b[3] = 0x10;
	b[10] = BALLOON_S_MEMFREE;
	b[12] = 5;
	offer(2, 0, 2 * BALLOON_STAT_SIZE);
	vs_err_t err = NULL;
	json_t *s = NULL;
	for (int i = 0; i < 500; i++) {
		json_decref(s);
		s = balloon_stats_json(dev, &err);
		cr_assert_not_null(s);
		if (json_object_get(s, "total_memory"))
			break;
		usleep(10000);
	}
	cr_assert_eq(json_integer_value(json_object_get(s, "total_memory")), 4096);
	cr_assert_eq(json_integer_value(json_object_get(s, "free_memory")), 5);
	cr_assert_null(json_object_get(s, "swap_in"), "a figure the guest did not send");
	json_decref(s);
	usleep(100000);
	cr_assert_eq(used_idx(2), 0, "the buffer is kept until the interval (60 s) is up");
	cr_assert_eq(balloon_set_stats_interval(dev, 1, &err), 0);
	cr_assert(wait_used(2, 1), "a new interval asks for a refresh at once");
	cr_assert_eq(balloon_set_stats_interval(dev, 0, &err), -1);
	cr_assert(strstr(err->msg, "stats_polling_interval_s"), "%s", err->msg);
	vs_err_free(&err);
}

Test(balloon_dev, no_stats_without_the_queue)
{
	add("amount=0");
	vs_err_t err = NULL;
	cr_assert_null(balloon_stats_json(dev, &err));
	cr_assert(strstr(err->msg, "not enabled"), "%s", err->msg);
	vs_err_free(&err);
	cr_assert_eq(balloon_set_stats_interval(dev, 5, &err), -1);
	vs_err_free(&err);
}

static uint32_t rdv(struct vm *v, uint64_t off)
{
	uint32_t x = 0;
	cr_assert(bus_access(&v->mmio, LAYOUT_VIRTIO_MMIO + off, (uint8_t *)&x, 4, false));
	return x;
}

/* A second VM the snapshot goes into, with the balloon its description says. */
static void restore_into(const void *blob, size_t len, const char *spec, int want,
			 uint32_t *num_pages, uint32_t *actual, vs_err_t *err)
{
	struct vm b;
	struct fake fb = FAKE_INIT;
	struct balloon_config c;
	cr_assert_eq(vm_create_detached(&b, &fake_ops, &fb, RAM, err), 0);
	cr_assert_eq(balloon_config_parse(spec, &c, err), 0);
	cr_assert_eq(device_add(&b, &virtio_balloon_kind, &c, err), 0);
	devices_pause(&b);
	cr_assert_eq(
	    virtio_balloon_kind.restore(device_find(&b, &virtio_balloon_kind), blob, len, err),
	    want, "%s", *err ? (*err)->msg : "");
	if (want == 0) {
		*num_pages = rdv(&b, 0x100);
		*actual = rdv(&b, 0x104);
	}
	devices_resume(&b);
	vm_destroy(&b);
}

Test(balloon_dev, snapshot_keeps_target_and_actual)
{
	add("amount=2");
	driver_start(0, 2);
	wr(0x104, 300); /* the guest's actual */
	vs_err_t err = NULL;
	cr_assert_eq(balloon_set_target(dev, 3, &err), 0);
	devices_pause(&vm);
	void *blob = NULL;
	size_t len = 0;
	cr_assert_eq(virtio_balloon_kind.save(dev, &blob, &len, &err), 0, "%s",
		     err ? err->msg : "");
	devices_resume(&vm);
	uint32_t num_pages = 0, actual = 0;
	restore_into(blob, len, "amount=2", 0, &num_pages, &actual, &err);
	cr_assert_eq(num_pages, 3 * 256, "the target PATCHed after boot, not the description's");
	cr_assert_eq(actual, 300);
	/* statistics on in the description, off in the state: another set of queues */
	restore_into(blob, len, "amount=2,stats=5", -1, &num_pages, &actual, &err);
	cr_assert(strstr(err->msg, "virtio-balloon") && strstr(err->msg, "queues"), "%s", err->msg);
	vs_err_free(&err);
	free(blob);
}
