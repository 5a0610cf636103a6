#include "vmm/boot/acpi.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "vmm/boot/aml.h"
#include "vmm/devices/i8042.h"
#include "vmm/devices/rtc.h"
#include "vmm/layout.h"

#define OEM_ID "VESSEL"
#define OEM_TABLE_ID "VESSELVM"
#define CREATOR_ID "VSSL"
#define HDR_LEN 36
#define RSDP_LEN 36

#define FADT_LEN 276
#define FADT_REVISION 6
#define FADT_MINOR 3
#define FADT_F_RESET_REG_SUP (1u << 10)
#define FADT_F_HW_REDUCED (1u << 20)
#define IAPC_VGA_NOT_PRESENT (1u << 2)
#define GAS_SYSTEM_IO 1
#define GAS_ACCESS_BYTE 1

#define MADT_PCAT_COMPAT 1u
#define MADT_LAPIC 0
#define MADT_IOAPIC 1
#define MADT_ISO 2
#define MADT_LAPIC_NMI 4
#define MADT_X2APIC 9
#define MADT_X2APIC_NMI 10

uint8_t acpi_sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

static void align16(struct aml *a)
{
	aml_zeros(a, (16 - a->len % 16) % 16);
}

static void put_at(struct aml *a, size_t off, const void *p, size_t n)
{
	if (!a->failed)
		memcpy(a->buf + off, p, n);
}

/* Starts a table at a 16-byte boundary; returns its offset. */
static size_t header(struct aml *a, const char *sig, uint8_t rev)
{
	align16(a);
	size_t at = a->len;
	aml_bytes(a, sig, 4);
	aml_u32(a, 0); /* length, patched by finish() */
	aml_u8(a, rev);
	aml_u8(a, 0); /* checksum */
	aml_bytes(a, OEM_ID, 6);
	aml_bytes(a, OEM_TABLE_ID, 8);
	aml_u32(a, 1);
	aml_bytes(a, CREATOR_ID, 4);
	aml_u32(a, 1);
	return at;
}

static void finish(struct aml *a, struct acpi_tables *out, size_t at, const char *sig)
{
	if (a->failed)
		return;
	uint32_t len = (uint32_t)(a->len - at);
	memcpy(a->buf + at + 4, &len, 4);
	a->buf[at + 9] = (uint8_t)-acpi_sum(a->buf + at, len);
	struct acpi_table_ref *r = &out->t[out->n++];
	memcpy(r->sig, sig, 4);
	r->sig[4] = '\0';
	r->offset = at;
	r->len = len;
}

static void gas(struct aml *a, uint16_t port)
{
	uint8_t g[12] = {GAS_SYSTEM_IO, 8, 0, GAS_ACCESS_BYTE};
	uint64_t addr = port;
	memcpy(g + 4, &addr, 8);
	aml_bytes(a, g, sizeof(g));
}

/* As the VMGenID spec and Linux's drivers/virt/vmgenid.c want: the id VMGENCTR (Linux also
 * matches the older VM_GEN_COUNTER, kept as _CID for other guests), and ADDR, a package of
 * the address's low and high DWORDs. Linux's GED driver (drivers/acpi/evged.c) runs _EVT
 * with the GSI on every edge of the interrupt; the Notify is what makes the vmgenid driver
 * read the new ID and reseed the guest's RNG. */
static void build_vmgenid(struct aml *a, const struct acpi_vmgenid *g)
{
	size_t dev = aml_device_begin(a, "VGEN");
	aml_name(a, "_HID");
	aml_string(a, "VMGENCTR");
	aml_name(a, "_CID");
	aml_string(a, "VM_GEN_COUNTER");
	aml_name(a, "_DDN");
	aml_string(a, "VM_GEN_COUNTER");
	size_t m = aml_method_begin(a, "ADDR", 0);
	aml_return(a);
	size_t pkg = aml_package_begin(a, 2);
	aml_integer(a, g->addr & 0xffffffffu);
	aml_integer(a, g->addr >> 32);
	aml_end(a, pkg);
	aml_end(a, m);
	aml_end(a, dev);

	dev = aml_device_begin(a, "GED");
	aml_name(a, "_HID");
	aml_string(a, "ACPI0013");
	aml_name(a, "_UID");
	aml_integer(a, 0);
	aml_name(a, "_CRS");
	size_t sz, res = aml_resources_begin(a, &sz);
	aml_res_ext_irq(a, g->gsi, false, false);
	aml_resources_end(a, res, sz);
	m = aml_method_begin(a, "_EVT", 1);
	size_t branch = aml_if_begin(a);
	aml_lequal(a);
	aml_arg(a, 0);
	aml_integer(a, g->gsi);
	aml_notify(a, "\\_SB.VGEN", 0x80);
	aml_end(a, branch);
	aml_end(a, m);
	aml_end(a, dev);
}

static void build_dsdt(struct aml *a, const struct acpi_config *cfg)
{
	size_t sb = aml_scope_begin(a, "\\_SB");

	size_t dev = aml_device_begin(a, "COM1");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0501");
	aml_name(a, "_UID");
	aml_integer(a, 1);
	aml_name(a, "_CRS");
	size_t sz, res = aml_resources_begin(a, &sz);
	aml_res_io(a, COM1_PORT, 8);
	aml_res_irq_noflags(a, COM1_IRQ);
	aml_resources_end(a, res, sz);
	aml_end(a, dev);

	/* The i8042 with its keyboard IRQ: in hardware-reduced mode Linux finds the
	 * controller only here (as on Firecracker), and the keyboard is how the API's
	 * SendCtrlAltDel reaches the guest. */
	dev = aml_device_begin(a, "PS2K");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0303");
	aml_name(a, "_CRS");
	res = aml_resources_begin(a, &sz);
	aml_res_io(a, I8042_DATA_PORT, 1);
	aml_res_io(a, I8042_CMD_PORT, 1);
	aml_res_irq_noflags(a, I8042_KBD_IRQ);
	aml_resources_end(a, res, sz);
	aml_end(a, dev);

	/* The mouse port too, though nothing is attached (the AUX tests fail at once):
	 * without it Linux warns that the firmware disabled the AUX port. */
	dev = aml_device_begin(a, "PS2M");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0F13");
	aml_name(a, "_CRS");
	res = aml_resources_begin(a, &sz);
	aml_res_irq_noflags(a, I8042_AUX_IRQ);
	aml_resources_end(a, res, sz);
	aml_end(a, dev);

	/* Linux's rtc_cmos binds to PNP0B00 only; in hardware-reduced mode there is no
	 * legacy PIC to assume IRQ 8 from, so the IRQ is stated here too. */
	dev = aml_device_begin(a, "RTC");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0B00");
	aml_name(a, "_CRS");
	res = aml_resources_begin(a, &sz);
	aml_res_io(a, RTC_PORT, 2);
	aml_res_irq_noflags(a, RTC_IRQ);
	aml_resources_end(a, res, sz);
	aml_end(a, dev);

	if (cfg->vmgenid)
		build_vmgenid(a, cfg->vmgenid);

	for (size_t i = 0; i < cfg->nvirtio; i++) {
		char name[8];
		snprintf(name, sizeof(name), "VR%02X", (unsigned)(i & 0xff));
		dev = aml_device_begin(a, name);
		aml_name(a, "_HID");
		aml_string(a, "LNRO0005");
		aml_name(a, "_UID");
		aml_integer(a, i);
		aml_name(a, "_CCA");
		aml_integer(a, 1);
		aml_name(a, "_CRS");
		res = aml_resources_begin(a, &sz);
		aml_res_mem32_fixed(a, (uint32_t)cfg->virtio[i].base, cfg->virtio[i].size);
		aml_res_ext_irq(a, cfg->virtio[i].gsi, false, false);
		aml_resources_end(a, res, sz);
		aml_end(a, dev);
	}
	aml_end(a, sb);

	/* \_S5: SLP_TYPa = 5; the guest writes (5 << 2) | SLP_EN to SLEEP_CONTROL_REG */
	aml_name(a, "\\_S5");
	size_t pkg = aml_package_begin(a, 4);
	aml_integer(a, PM_SLP_TYP_S5);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_end(a, pkg);
}

static size_t build_fadt(struct aml *a, uint64_t dsdt)
{
	size_t at = header(a, "FACP", FADT_REVISION);
	aml_zeros(a, FADT_LEN - HDR_LEN);
	if (a->failed)
		return at;
	uint32_t dsdt32 = (uint32_t)dsdt, flags = FADT_F_HW_REDUCED | FADT_F_RESET_REG_SUP;
	uint16_t iapc = IAPC_VGA_NOT_PRESENT;
	uint8_t century = RTC_CENTURY_REG, minor = FADT_MINOR, reset_value = PM_RESET_VALUE;
	put_at(a, at + 40, &dsdt32, 4);
	put_at(a, at + 108, &century, 1);
	put_at(a, at + 109, &iapc, 2);
	put_at(a, at + 112, &flags, 4);
	put_at(a, at + 128, &reset_value, 1);
	put_at(a, at + 131, &minor, 1);
	put_at(a, at + 140, &dsdt, 8);
	/* the three registers are GAS structures written in place */
	struct aml g = {0};
	gas(&g, PM_RESET_PORT);
	gas(&g, PM_SLEEP_CONTROL_PORT);
	gas(&g, PM_SLEEP_STATUS_PORT);
	if (g.failed) {
		a->failed = true;
		aml_free(&g);
		return at;
	}
	put_at(a, at + 116, g.buf, 12);
	put_at(a, at + 244, g.buf + 12, 12);
	put_at(a, at + 256, g.buf + 24, 12);
	put_at(a, at + 268, "VESSELVM", 8); /* hypervisor vendor identity */
	aml_free(&g);
	return at;
}

static void build_madt(struct aml *a, unsigned ncpus)
{
	aml_u32(a, (uint32_t)LAYOUT_LAPIC);
	aml_u32(a, MADT_PCAT_COMPAT);
	for (unsigned i = 0; i < ncpus; i++) {
		if (i < 255) {
			uint8_t e[8] = {MADT_LAPIC, 8, (uint8_t)i, (uint8_t)i, 1, 0, 0, 0};
			aml_bytes(a, e, sizeof(e));
		} else {
			/* ids past 254 only fit the x2APIC structure */
			uint8_t e[16] = {MADT_X2APIC, 16};
			uint32_t id = i, enabled = 1;
			memcpy(e + 4, &id, 4);
			memcpy(e + 8, &enabled, 4);
			memcpy(e + 12, &id, 4);
			aml_bytes(a, e, sizeof(e));
		}
	}
	uint8_t ioapic[12] = {MADT_IOAPIC, 12, 0, 0};
	uint32_t ioapic_addr = (uint32_t)LAYOUT_IOAPIC, gsi_base = 0;
	memcpy(ioapic + 4, &ioapic_addr, 4);
	memcpy(ioapic + 8, &gsi_base, 4);
	aml_bytes(a, ioapic, sizeof(ioapic));
	/* the PIT's IRQ0 is wired to IOAPIC pin 2, as on every PC */
	uint8_t iso[10] = {MADT_ISO, 10, 0, 0, 2, 0, 0, 0, 0, 0};
	aml_bytes(a, iso, sizeof(iso));
	/* LINT1 of every processor is the NMI line */
	uint8_t nmi[6] = {MADT_LAPIC_NMI, 6, 0xff, 0x05, 0x00, 1};
	aml_bytes(a, nmi, sizeof(nmi));
}

int acpi_build(const struct acpi_config *cfg, uint64_t gpa, struct acpi_tables *out, vs_err_t *err)
{
	memset(out, 0, sizeof(*out));
	if (gpa % 16)
		return vs_err(err, 0, "ACPI: RSDP address must be 16-byte aligned");
	if (cfg->ncpus == 0)
		return vs_err(err, 0, "ACPI: no CPUs");
	if (cfg->nvirtio > 256)
		return vs_err(err, 0, "ACPI: at most 256 virtio-mmio devices");
	struct aml a = {0};

	/* RSDP (ACPI 2.0+): XSDT address patched once the XSDT's place is known */
	aml_bytes(&a, "RSD PTR ", 8);
	aml_u8(&a, 0);
	aml_bytes(&a, OEM_ID, 6);
	aml_u8(&a, 2);
	aml_u32(&a, 0); /* no RSDT: a 64-bit XSDT only */
	aml_u32(&a, RSDP_LEN);
	aml_u64(&a, 0);
	aml_zeros(&a, 4);

	size_t dsdt = header(&a, "DSDT", 2);
	build_dsdt(&a, cfg);
	finish(&a, out, dsdt, "DSDT");

	size_t fadt = build_fadt(&a, gpa + dsdt);
	finish(&a, out, fadt, "FACP");

	size_t madt = header(&a, "APIC", 5);
	build_madt(&a, cfg->ncpus);
	finish(&a, out, madt, "APIC");

	size_t xsdt = header(&a, "XSDT", 1);
	aml_u64(&a, gpa + fadt);
	aml_u64(&a, gpa + madt);
	finish(&a, out, xsdt, "XSDT");

	if (a.failed || a.len > LAYOUT_ACPI_SIZE) {
		aml_free(&a);
		return vs_err(err, a.failed ? ENOMEM : 0, "ACPI tables do not fit (%d CPUs)",
			      cfg->ncpus);
	}
	uint64_t xsdt_gpa = gpa + xsdt;
	memcpy(a.buf + 24, &xsdt_gpa, 8);
	a.buf[8] = (uint8_t)-acpi_sum(a.buf, 20);
	a.buf[32] = (uint8_t)-acpi_sum(a.buf, RSDP_LEN);
	struct acpi_table_ref *r = &out->t[out->n++];
	memcpy(r->sig, "RSDP", 5);
	r->offset = 0;
	r->len = RSDP_LEN;

	out->buf = a.buf;
	out->len = a.len;
	out->gpa = gpa;
	return 0;
}

void acpi_tables_free(struct acpi_tables *t)
{
	free(t->buf);
	t->buf = NULL;
}

int acpi_dump(const struct acpi_tables *t, const char *dir, vs_err_t *err)
{
	if (vs_mkdir_p(dir, 0755, err) < 0)
		return -1;
	for (size_t i = 0; i < t->n; i++) {
		char name[16];
		for (size_t j = 0; j < 4; j++)
			name[j] = (char)tolower((unsigned char)t->t[i].sig[j]);
		snprintf(name + 4, sizeof(name) - 4, ".dat");
		cleanup_free char *path = NULL;
		if (asprintf(&path, "%s/%s", dir, name) < 0)
			return vs_err(err, ENOMEM, "dump ACPI");
		if (vs_write_file(path, (const char *)t->buf + t->t[i].offset, t->t[i].len, err) <
		    0)
			return -1;
	}
	return 0;
}
