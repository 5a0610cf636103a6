/* ACPI tables and the AML encoder: structure, pointers and checksums. The tables
 * are also disassembled by iasl in tests/integration/test_vm_acpi.py. */
#include <criterion/criterion.h>
#include <string.h>

#include "vmm/boot/acpi.h"
#include "vmm/boot/aml.h"
#include "vmm/layout.h"

#define BASE 0xe0000

static const struct acpi_table_ref *find(const struct acpi_tables *t, const char *sig)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->t[i].sig, sig) == 0)
			return &t->t[i];
	cr_assert_fail("no %s table", sig);
	return NULL;
}

static uint32_t u32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint64_t u64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static void build(struct acpi_tables *t, unsigned ncpus)
{
	struct acpi_config cfg = {.ncpus = ncpus};
	vs_err_t err = NULL;
	cr_assert_eq(acpi_build(&cfg, BASE, t, &err), 0, "%s", err ? err->msg : "");
}

Test(acpi, rsdp_points_to_xsdt_with_right_checksums)
{
	struct acpi_tables t;
	build(&t, 1);
	const uint8_t *rsdp = t.buf;
	cr_assert_eq(memcmp(rsdp, "RSD PTR ", 8), 0);
	cr_assert_eq(rsdp[15], 2, "revision 2");
	cr_assert_eq(acpi_sum(rsdp, 20), 0, "ACPI 1.0 checksum");
	cr_assert_eq(acpi_sum(rsdp, 36), 0, "extended checksum");
	cr_assert_eq(u32(rsdp + 20), 36);
	const struct acpi_table_ref *x = find(&t, "XSDT");
	cr_assert_eq(u64(rsdp + 24), BASE + x->offset);
	acpi_tables_free(&t);
}

Test(acpi, every_table_sums_to_zero_and_is_aligned)
{
	for (unsigned n = 1; n <= 300; n += 299) {
		struct acpi_tables t;
		build(&t, n);
		cr_assert_eq(t.n, 5);
		for (size_t i = 0; i < t.n; i++) {
			const struct acpi_table_ref *r = &t.t[i];
			cr_assert_eq(r->offset % 16, 0, "%s aligned", r->sig);
			cr_assert_leq(r->offset + r->len, t.len);
			if (strcmp(r->sig, "RSDP") == 0)
				continue;
			cr_assert_eq(memcmp(t.buf + r->offset, r->sig, 4), 0);
			cr_assert_eq(u32(t.buf + r->offset + 4), r->len, "%s length", r->sig);
			cr_assert_eq(acpi_sum(t.buf + r->offset, r->len), 0, "%s checksum", r->sig);
		}
		cr_assert_leq(t.len, LAYOUT_ACPI_SIZE);
		acpi_tables_free(&t);
	}
}

Test(acpi, xsdt_lists_facp_and_apic)
{
	struct acpi_tables t;
	build(&t, 2);
	const struct acpi_table_ref *x = find(&t, "XSDT");
	cr_assert_eq(x->len, 36 + 16);
	const uint8_t *p = t.buf + x->offset + 36;
	cr_assert_eq(u64(p), BASE + find(&t, "FACP")->offset);
	cr_assert_eq(u64(p + 8), BASE + find(&t, "APIC")->offset);
	acpi_tables_free(&t);
}

Test(acpi, fadt_is_hardware_reduced_with_sleep_and_reset)
{
	struct acpi_tables t;
	build(&t, 1);
	const struct acpi_table_ref *f = find(&t, "FACP");
	const uint8_t *p = t.buf + f->offset;
	cr_assert_eq(f->len, 276);
	cr_assert_eq(p[8], 6, "FADT major revision");
	uint32_t flags = u32(p + 112);
	cr_assert(flags & (1u << 20), "HW_REDUCED_ACPI");
	cr_assert(flags & (1u << 10), "RESET_REG_SUP");
	cr_assert_eq(u64(p + 140), BASE + find(&t, "DSDT")->offset, "X_DSDT");
	cr_assert_eq(u32(p + 40), BASE + find(&t, "DSDT")->offset, "DSDT");
	/* GAS: space 1 (SystemIO), 8 bits, byte access */
	const uint8_t *reset = p + 116, *sctl = p + 244, *ssts = p + 256;
	cr_assert_eq(reset[0], 1);
	cr_assert_eq(reset[1], 8);
	cr_assert_eq(u64(reset + 4), PM_RESET_PORT);
	cr_assert_eq(p[128], PM_RESET_VALUE);
	cr_assert_eq(sctl[0], 1);
	cr_assert_eq(u64(sctl + 4), PM_SLEEP_CONTROL_PORT);
	cr_assert_eq(ssts[0], 1);
	cr_assert_eq(u64(ssts + 4), PM_SLEEP_STATUS_PORT);
	acpi_tables_free(&t);
}

Test(acpi, madt_has_one_lapic_per_cpu_ioapic_and_override)
{
	struct acpi_tables t;
	build(&t, 4);
	const struct acpi_table_ref *m = find(&t, "APIC");
	const uint8_t *p = t.buf + m->offset, *end = p + m->len;
	cr_assert_eq(u32(p + 36), LAYOUT_LAPIC);
	unsigned cpus = 0, ioapics = 0, isos = 0;
	for (const uint8_t *e = p + 44; e < end; e += e[1]) {
		cr_assert_geq(e[1], 2);
		switch (e[0]) {
		case 0:
			cr_assert_eq(e[3], cpus, "APIC id = vCPU index");
			cr_assert_eq(e[4] & 1, 1, "enabled");
			cpus++;
			break;
		case 1:
			cr_assert_eq(e[2], 0);
			cr_assert_eq(u32(e + 4), LAYOUT_IOAPIC);
			cr_assert_eq(u32(e + 8), 0);
			ioapics++;
			break;
		case 2:
			cr_assert_eq(e[3], 0, "ISA IRQ0");
			cr_assert_eq(u32(e + 4), 2, "-> GSI 2");
			isos++;
			break;
		}
	}
	cr_assert_eq(cpus, 4);
	cr_assert_eq(ioapics, 1);
	cr_assert_eq(isos, 1);
	acpi_tables_free(&t);
}

Test(acpi, madt_uses_x2apic_entries_past_254)
{
	struct acpi_tables t;
	build(&t, 300);
	const struct acpi_table_ref *m = find(&t, "APIC");
	const uint8_t *p = t.buf + m->offset, *end = p + m->len;
	unsigned xapic = 0, x2apic = 0;
	for (const uint8_t *e = p + 44; e < end; e += e[1]) {
		if (e[0] == 0)
			xapic++;
		if (e[0] == 9) {
			cr_assert_eq(u32(e + 4), 255 + x2apic);
			x2apic++;
		}
	}
	cr_assert_eq(xapic, 255);
	cr_assert_eq(x2apic, 45);
	acpi_tables_free(&t);
}

Test(acpi, dsdt_declares_virtio_devices)
{
	struct acpi_virtio_mmio v[2] = {{0xd0000000, 0x200, 5}, {0xd0000200, 0x200, 6}};
	struct acpi_config cfg = {.ncpus = 1, .virtio = v, .nvirtio = 2};
	struct acpi_tables t;
	vs_err_t err = NULL;
	cr_assert_eq(acpi_build(&cfg, BASE, &t, &err), 0);
	const struct acpi_table_ref *d = find(&t, "DSDT");
	const uint8_t *p = t.buf + d->offset;
	cr_assert_not_null(memmem(p, d->len, "LNRO0005", 9));
	cr_assert_not_null(memmem(p, d->len, "VR01", 4));
	cr_assert_eq(acpi_sum(p, d->len), 0);
	acpi_tables_free(&t);
}

/* Hardware-reduced ACPI: Linux drives the i8042 (and takes IRQ 1) only if it is here. */
Test(acpi, dsdt_declares_the_i8042_with_its_ports_and_keyboard_irq)
{
	struct acpi_config cfg = {.ncpus = 1};
	struct acpi_tables t;
	vs_err_t err = NULL;
	cr_assert_eq(acpi_build(&cfg, BASE, &t, &err), 0);
	const struct acpi_table_ref *d = find(&t, "DSDT");
	const uint8_t *p = t.buf + d->offset;
	const uint8_t *dev = memmem(p, d->len, "PS2K", 4);
	cr_assert_not_null(dev, "Device (PS2K)");
	size_t rest = d->len - (size_t)(dev - p);
	uint32_t hid = aml_eisaid_value("PNP0303");
	uint8_t hid_obj[5] = {0x0c, (uint8_t)hid, (uint8_t)(hid >> 8), (uint8_t)(hid >> 16),
			      (uint8_t)(hid >> 24)};
	cr_assert_not_null(memmem(dev, rest, hid_obj, sizeof(hid_obj)), "_HID PNP0303");
	/* IO 0x60 and 0x64 (1 byte each), then IRQNoFlags () {1} */
	static const uint8_t crs[] = {0x47, 0x01, 0x60, 0x00, 0x60, 0x00, 0x01, 0x01, 0x47, 0x01,
				      0x64, 0x00, 0x64, 0x00, 0x01, 0x01, 0x22, 0x02, 0x00};
	cr_assert_not_null(memmem(dev, rest, crs, sizeof(crs)), "_CRS");
	/* and its (empty) mouse port, IRQNoFlags () {12}, so Linux does not warn */
	const uint8_t *aux = memmem(p, d->len, "PS2M", 4);
	cr_assert_not_null(aux, "Device (PS2M)");
	static const uint8_t irq12[] = {0x22, 0x00, 0x10};
	cr_assert_not_null(memmem(aux, d->len - (size_t)(aux - p), irq12, sizeof(irq12)), "IRQ 12");
	acpi_tables_free(&t);
}

Test(acpi, dsdt_declares_the_rtc_with_its_ports_and_irq)
{
	struct acpi_config cfg = {.ncpus = 1};
	struct acpi_tables t;
	vs_err_t err = NULL;
	cr_assert_eq(acpi_build(&cfg, BASE, &t, &err), 0);
	const struct acpi_table_ref *d = find(&t, "DSDT");
	const uint8_t *p = t.buf + d->offset;
	const uint8_t *dev = memmem(p, d->len, "RTC_", 4);
	cr_assert_not_null(dev, "Device (RTC)");
	size_t rest = d->len - (size_t)(dev - p);
	uint32_t hid = aml_eisaid_value("PNP0B00");
	uint8_t hid_obj[5] = {0x0c, (uint8_t)hid, (uint8_t)(hid >> 8), (uint8_t)(hid >> 16),
			      (uint8_t)(hid >> 24)};
	cr_assert_not_null(memmem(dev, rest, hid_obj, sizeof(hid_obj)), "_HID PNP0B00");
	/* IO (Decode16, 0x70, 0x70, 1, 2) then IRQNoFlags () {8} */
	static const uint8_t crs[] = {0x47, 0x01, 0x70, 0x00, 0x70, 0x00,
				      0x01, 0x02, 0x22, 0x00, 0x01};
	cr_assert_not_null(memmem(dev, rest, crs, sizeof(crs)), "_CRS");
	const struct acpi_table_ref *f = find(&t, "FACP");
	cr_assert_eq(t.buf[f->offset + 108], 0x32, "FADT CENTURY names CMOS byte 0x32");
	acpi_tables_free(&t);
}

Test(acpi, bad_config)
{
	struct acpi_config cfg = {.ncpus = 0};
	struct acpi_tables t;
	vs_err_t err = NULL;
	cr_assert_eq(acpi_build(&cfg, BASE, &t, &err), -1);
	vs_err_free(&err);
	cfg.ncpus = 1;
	cr_assert_eq(acpi_build(&cfg, BASE + 4, &t, &err), -1);
	vs_err_free(&err);
}

Test(aml, pkglen_encoding)
{
	uint8_t b[4];
	cr_assert_eq(aml_pkglen_encode(0, b), 1);
	cr_assert_eq(b[0], 1);
	cr_assert_eq(aml_pkglen_encode(62, b), 1);
	cr_assert_eq(b[0], 63);
	/* 63 bytes of content need 2 length bytes: total 65 = 0x41 */
	cr_assert_eq(aml_pkglen_encode(63, b), 2);
	cr_assert_eq(b[0], 0x40 | 0x1);
	cr_assert_eq(b[1], 0x4);
	cr_assert_eq(aml_pkglen_encode(0xffd, b), 2);
	cr_assert_eq(aml_pkglen_encode(0xffe, b), 3);
	cr_assert_eq(aml_pkglen_encode(0xffffffb, b), 4);
	cr_assert_eq(aml_pkglen_encode(0xffffffc, b), 0, "2^28 is too long for AML");
}

Test(aml, eisaid)
{
	cr_assert_eq(aml_eisaid_value("PNP0501"), 0x0105d041);
	cr_assert_eq(aml_eisaid_value("PNP0A03"), 0x030ad041);
	cr_assert_eq(aml_eisaid_value("pnp0501"), 0);
	cr_assert_eq(aml_eisaid_value("PNP05"), 0);
}

Test(aml, integers_names_and_nesting)
{
	struct aml a = {0};
	aml_integer(&a, 0);
	aml_integer(&a, 1);
	aml_integer(&a, 0x12);
	aml_integer(&a, 0x1234);
	aml_integer(&a, 0x12345678);
	aml_integer(&a, 0x123456789aULL);
	static const uint8_t ints[] = {0x00, 0x01, 0x0a, 0x12, 0x0b, 0x34, 0x12,
				       0x0c, 0x78, 0x56, 0x34, 0x12, 0x0e, 0x9a,
				       0x78, 0x56, 0x34, 0x12, 0x00, 0x00, 0x00};
	cr_assert_eq(a.len, sizeof(ints));
	cr_assert_eq(memcmp(a.buf, ints, sizeof(ints)), 0);
	aml_free(&a);

	aml_name_string(&a, "\\_SB.COM1");
	cr_assert_eq(a.len, 10);
	cr_assert_eq(memcmp(a.buf, "\\\x2e_SB_COM1", 10), 0);
	aml_free(&a);

	size_t m = aml_scope_begin(&a, "_SB");
	size_t d = aml_device_begin(&a, "DEV");
	aml_end(&a, d);
	aml_end(&a, m);
	static const uint8_t nested[] = {0x10, 0x0c, '_', 'S', 'B', '_', 0x5b,
					 0x82, 0x05, 'D', 'E', 'V', '_'};
	cr_assert_eq(a.len, sizeof(nested));
	cr_assert_eq(memcmp(a.buf, nested, sizeof(nested)), 0);
	cr_assert_not(aml_failed(&a));
	aml_free(&a);

	aml_name_string(&a, "bad!");
	cr_assert(aml_failed(&a), "lower case and punctuation are not AML names");
	aml_free(&a);
	aml_name_string(&a, "TOOLONG");
	cr_assert(aml_failed(&a));
	aml_free(&a);
}
