/* The VM generation ID: the 16 bytes are where the DSDT says, a snapshot load changes them
 * and raises the GED's interrupt (an edge on GED_GSI), a bad blob changes nothing. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/boot/acpi.h"
#include "vmm/device.h"
#include "vmm/devices/vmgenid.h"
#include "vmm/layout.h"
#include "vmm/memory.h"
#include "vmm/vm.h"

/* The fake interrupt controller: every level change, in order. */
static struct {
	unsigned gsi[8];
	int level[8];
	unsigned n;
} lines;

static void record_line(struct vm *vm, unsigned gsi, int level)
{
	(void)vm;
	if (lines.n < 8) {
		lines.gsi[lines.n] = gsi;
		lines.level[lines.n] = level;
	}
	lines.n++;
}
static const struct vm_ops fake_ops = {.irq_line = record_line};

static struct vm vm;

static struct vmgenid *make(void)
{
	vs_err_t err = NULL;
	memset(&lines, 0, sizeof(lines));
	cr_assert_eq(vm_create_detached(&vm, &fake_ops, NULL, GUEST_MEM_MIN, &err), 0, "%s",
		     err ? err->msg : "");
	cr_assert_eq(device_add(&vm, &vmgenid_kind, NULL, &err), 0, "%s", err ? err->msg : "");
	struct vmgenid *g = device_find(&vm, &vmgenid_kind);
	cr_assert_not_null(g);
	return g;
}

static void id_at(uint64_t gpa, uint8_t out[VMGENID_SIZE])
{
	const uint8_t *p = guest_mem_ptr(&vm.mem, gpa, VMGENID_SIZE);
	cr_assert_not_null(p);
	memcpy(out, p, VMGENID_SIZE);
}

static const uint8_t zero_id[VMGENID_SIZE];

/* The device's snapshot blob (malloc'd), as a snapshot would hold it. */
static void *saved(struct vmgenid *g, size_t *len)
{
	vs_err_t err = NULL;
	void *blob = NULL;
	cr_assert_eq(vmgenid_kind.save(g, &blob, len, &err), 0, "%s", err ? err->msg : "");
	return blob;
}

Test(vmgenid, every_vm_has_one_in_a_page_the_guest_is_not_given)
{
	bool listed = false;
	for (size_t i = 0; i < device_nkinds; i++)
		listed |= device_kinds[i] == &vmgenid_kind;
	cr_assert(listed, "vmgenid is a row of the device table");
	cr_assert(vmgenid_kind.builtin && vmgenid_kind.save && vmgenid_kind.restore);

	struct guest_region r[GUEST_MEMMAP_MAX];
	size_t n = guest_memmap(256ULL << 20, r);
	bool reserved = false;
	for (size_t i = 0; i < n; i++) {
		bool inside =
		    LAYOUT_VMGENID >= r[i].addr && LAYOUT_VMGENID + 4096 <= r[i].addr + r[i].size;
		cr_assert(!(inside && r[i].type == GUEST_RAM),
			  "the ID's page is not RAM to the guest");
		reserved |= inside && r[i].type == GUEST_RESERVED;
	}
	cr_assert(reserved, "the ID's page is reserved in the memory map");
}

Test(vmgenid, a_new_vm_has_a_random_id_at_the_advertised_address)
{
	struct vmgenid *g = make();
	cr_assert_eq(vmgenid_addr(g), LAYOUT_VMGENID);
	uint8_t a[VMGENID_SIZE], b[VMGENID_SIZE];
	id_at(LAYOUT_VMGENID, a);
	cr_assert(memcmp(a, zero_id, VMGENID_SIZE) != 0, "an ID was written");
	cr_assert_eq(lines.n, 0, "no notification at boot");
	vm_destroy(&vm);

	make();
	id_at(LAYOUT_VMGENID, b);
	cr_assert(memcmp(a, b, VMGENID_SIZE) != 0, "two VMs have two IDs");
	vm_destroy(&vm);
}

Test(vmgenid, restore_writes_a_fresh_id_and_raises_the_notification)
{
	struct vmgenid *g = make();
	vs_err_t err = NULL;
	size_t len;
	void *blob = saved(g, &len);
	cr_assert_eq(guest_mem_track_dirty(&vm.mem, true, &err), 0);

	uint8_t seen[4][VMGENID_SIZE];
	id_at(LAYOUT_VMGENID, seen[0]);
	for (int load = 1; load < 4; load++) {
		lines.n = 0;
		cr_assert_eq(vmgenid_kind.restore(g, blob, len, &err), 0, "%s",
			     err ? err->msg : "");
		id_at(LAYOUT_VMGENID, seen[load]);
		for (int before = 0; before < load; before++)
			cr_assert(memcmp(seen[load], seen[before], VMGENID_SIZE) != 0,
				  "load %d has a new ID", load);
		/* one edge on the GED's line: up, then down */
		cr_assert_eq(lines.n, 2);
		cr_assert_eq(lines.gsi[0], GED_GSI);
		cr_assert_eq(lines.level[0], 1);
		cr_assert_eq(lines.gsi[1], GED_GSI);
		cr_assert_eq(lines.level[1], 0);
	}
	/* a diff snapshot after the load carries the ID's page */
	uint64_t *dirty = calloc(guest_mem_npages(&vm.mem) / 64 + 1, sizeof(uint64_t));
	guest_mem_take_dirty(&vm.mem, dirty);
	uint64_t page = LAYOUT_VMGENID / 4096;
	cr_assert(dirty[page / 64] & (1ULL << (page % 64)), "the ID's page is marked dirty");
	free(dirty);
	free(blob);
	vm_destroy(&vm);
}

Test(vmgenid, a_vm_built_to_be_restored_writes_nothing_into_its_given_ram)
{
	vs_err_t err = NULL;
	cr_assert_eq(vm_create_detached(&vm, &fake_ops, NULL, GUEST_MEM_MIN, &err), 0);
	/* a local migration's source still runs on this RAM while the destination is built */
	vm.ram_given = true;
	cr_assert_eq(device_add(&vm, &vmgenid_kind, NULL, &err), 0, "%s", err ? err->msg : "");
	uint8_t id[VMGENID_SIZE];
	id_at(LAYOUT_VMGENID, id);
	cr_assert_eq(memcmp(id, zero_id, VMGENID_SIZE), 0, "the given RAM is as it was");
	vm_destroy(&vm);
}

Test(vmgenid, a_migrations_destination_keeps_the_id_once)
{
	struct vmgenid *g = make();
	vs_err_t err = NULL;
	size_t len;
	void *blob = saved(g, &len);
	uint8_t before[VMGENID_SIZE], after[VMGENID_SIZE];
	id_at(LAYOUT_VMGENID, before);
	lines.n = 0;
	vmgenid_continue(g);
	cr_assert_eq(vmgenid_kind.restore(g, blob, len, &err), 0, "%s", err ? err->msg : "");
	id_at(LAYOUT_VMGENID, after);
	cr_assert_eq(memcmp(before, after, VMGENID_SIZE), 0, "the moved VM keeps its ID");
	cr_assert_eq(lines.n, 0, "and is told nothing");
	/* only that restore: a later snapshot's load of this VM is a new generation again */
	cr_assert_eq(vmgenid_kind.restore(g, blob, len, &err), 0, "%s", err ? err->msg : "");
	id_at(LAYOUT_VMGENID, after);
	cr_assert_neq(memcmp(before, after, VMGENID_SIZE), 0);
	cr_assert_eq(lines.n, 2);
	free(blob);
	vm_destroy(&vm);
}

Test(vmgenid, a_bad_blob_is_refused_and_changes_nothing)
{
	struct vmgenid *g = make();
	vs_err_t err = NULL;
	size_t len;
	void *blob = saved(g, &len);
	uint8_t before[VMGENID_SIZE], after[VMGENID_SIZE];
	id_at(LAYOUT_VMGENID, before);

	uint8_t *bad = malloc(len + 1);
	const struct {
		size_t off; /* byte to change, or the length to give */
		bool is_len;
		const char *msg;
	} cases[] = {
	    {len - 1, true, "state of"},
	    {len + 1, true, "state of"},
	    {0, false, "format version"},
	    {4, false, "reserved"},
	    {9, false, "the snapshot's ID is at 0x"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(bad, blob, len);
		bad[len] = 0;
		size_t n = len;
		if (cases[i].is_len)
			n = cases[i].off;
		else
			bad[cases[i].off] ^= 0x01;
		err = NULL;
		lines.n = 0;
		cr_assert_eq(vmgenid_kind.restore(g, bad, n, &err), -1, "case %zu", i);
		cr_assert_not_null(strstr(err->msg, cases[i].msg), "case %zu: %s", i, err->msg);
		vs_err_free(&err);
		id_at(LAYOUT_VMGENID, after);
		cr_assert(memcmp(before, after, VMGENID_SIZE) == 0, "case %zu left the ID", i);
		cr_assert_eq(lines.n, 0, "case %zu raised no interrupt", i);
	}
	free(bad);
	free(blob);
	vm_destroy(&vm);
}

static const uint8_t *find_in(const uint8_t *p, size_t len, const void *what, size_t n)
{
	const uint8_t *at = memmem(p, len, what, n);
	cr_assert_not_null(at);
	return at;
}

/* The DSDT as Linux's vmgenid and GED drivers read it (disassembled by iasl in
 * tests/integration/test_vm_acpi.py). */
Test(vmgenid, dsdt_gives_the_address_and_notifies_on_the_ged_interrupt)
{
	struct acpi_vmgenid genid = {0x123400000df008ULL, GED_GSI};
	struct acpi_config cfg = {.ncpus = 1, .vmgenid = &genid};
	struct acpi_tables t;
	vs_err_t err = NULL;
	cr_assert_eq(acpi_build(&cfg, LAYOUT_ACPI, &t, &err), 0);
	const uint8_t *p = NULL;
	size_t len = 0;
	for (size_t i = 0; i < t.n; i++)
		if (!strcmp(t.t[i].sig, "DSDT")) {
			p = t.buf + t.t[i].offset;
			len = t.t[i].len;
		}
	cr_assert_not_null(p);
	cr_assert_eq(acpi_sum(p, len), 0);

	const uint8_t *dev = find_in(p, len, "VGEN", 4);
	size_t rest = len - (size_t)(dev - p);
	find_in(dev, rest, "\x0dVMGENCTR", 10);	      /* _HID */
	find_in(dev, rest, "\x0dVM_GEN_COUNTER", 16); /* _CID */
	/* Method (ADDR, 0) { Return (Package (2) { low DWORD, high DWORD }) } */
	static const uint8_t addr[] = {'A',  'D',  'D',	 'R',  0x00, 0xa4, 0x12, 0x0c, 0x02, 0x0c,
				       0x08, 0xf0, 0x0d, 0x00, 0x0c, 0x00, 0x34, 0x12, 0x00};
	find_in(dev, rest, addr, sizeof(addr));

	const uint8_t *ged = find_in(p, len,
				     "\x0d"
				     "ACPI0013",
				     10);
	rest = len - (size_t)(ged - p);
	/* Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { GED_GSI } */
	static const uint8_t irq[] = {0x89, 0x06, 0x00, 0x03, 0x01, GED_GSI, 0, 0, 0};
	find_in(ged, rest, irq, sizeof(irq));
	/* Method (_EVT, 1) { If (Arg0 == GED_GSI) { Notify (\_SB.VGEN, 0x80) } } */
	const uint8_t *evt = find_in(ged, rest, "_EVT\x01\xa0", 6);
	rest = len - (size_t)(evt - p);
	static const uint8_t test[] = {0x93, 0x68, 0x0a, GED_GSI};
	find_in(evt, rest, test, sizeof(test));
	static const uint8_t notify[] = {0x86, '\\', 0x2e, '_', 'S',  'B', '_',
					 'V',  'G',  'E',  'N', 0x0a, 0x80};
	find_in(evt, rest, notify, sizeof(notify));
	acpi_tables_free(&t);

	/* without it, none of it */
	cfg.vmgenid = NULL;
	cr_assert_eq(acpi_build(&cfg, LAYOUT_ACPI, &t, &err), 0);
	cr_assert_null(memmem(t.buf, t.len, "VMGENCTR", 8));
	cr_assert_null(memmem(t.buf, t.len, "ACPI0013", 8));
	acpi_tables_free(&t);
}
