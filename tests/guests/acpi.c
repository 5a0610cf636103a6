/*
 * Finds the RSDP both ways (boot info, BIOS-area scan), walks the XSDT checking every
 * checksum, and reports the tables, the FADT's power registers and what the MADT declares.
 */
#include "acpi.h"
#include "guest.h"

static void report_madt(void)
{
	const struct acpi_header *madt = acpi_table("APIC");
	const uint8_t *p = (const uint8_t *)madt + sizeof(*madt) + 8;
	const uint8_t *end = (const uint8_t *)madt + madt->length;
	uint8_t ids[MAX_CPUS];

	gprintf("MADT LAPIC ADDR: 0x%08x\n", *(const uint32_t *)(madt + 1));
	for (; p + 2 <= end && p[1] >= 2 && p + p[1] <= end; p += p[1]) {
		if (p[0] == 1 && p[1] >= 12)
			gprintf("MADT IOAPIC: id=%u addr=0x%08x gsi=%u\n", p[2],
				*(const uint32_t *)(p + 4), *(const uint32_t *)(p + 8));
		else if (p[0] == 2 && p[1] >= 10)
			gprintf("MADT ISO: irq=%u gsi=%u\n", p[3], *(const uint32_t *)(p + 4));
	}
	gprintf("MADT CPUS: %d\n", madt_cpu_ids(ids, MAX_CPUS));
}

/* COM1 as the DSDT declares it: _HID EISAID("PNP0501"), then the IO and IRQ descriptors of its
 * _CRS (a byte scan, not an AML interpreter: enough for a device the VMM writes one way). */
static void report_dsdt_com1(const struct acpi_header *dsdt)
{
	static const uint8_t pnp0501[5] = {0x0c, 0x41, 0xd0, 0x05, 0x01}; /* DWordPrefix, id */
	const uint8_t *p = (const uint8_t *)(dsdt + 1), *end = (const uint8_t *)dsdt + dsdt->length;
	int io = -1, irq = -1;

	while (p + sizeof(pnp0501) <= end && memcmp(p, pnp0501, sizeof(pnp0501)))
		p++;
	if (p + sizeof(pnp0501) > end) {
		gprintf("DSDT COM1: no PNP0501 device\n");
		return;
	}
	for (; p + 8 <= end && (io < 0 || irq < 0); p++) {
		uint16_t mask = (uint16_t)(p[1] | p[2] << 8);

		if (io < 0 && p[0] == 0x47 && p[1] <= 1) /* IO port descriptor: decode, min */
			io = p[2] | p[3] << 8;
		else if (io >= 0 && irq < 0 && (p[0] == 0x22 || p[0] == 0x23) && mask &&
			 !(mask & (mask - 1))) /* IRQ descriptor: a one-bit mask */
			irq = __builtin_ctz(mask);
	}
	gprintf("DSDT COM1: PNP0501 io=0x%x irq=%d\n", io, irq);
}

void guest_main(void)
{
	const struct acpi_rsdp *from_info = acpi_rsdp_at(start_info->rsdp_paddr);
	const struct acpi_rsdp *scanned = acpi_rsdp_scan();
	const struct acpi_rsdp *rsdp = from_info ? from_info : scanned;
	const struct acpi_header *root = acpi_root(rsdp), *fadt, *dsdt;
	int bad = 0;

	gprintf("RSDP START_INFO: 0x%08x\n", (uint32_t)(uintptr_t)from_info);
	gprintf("RSDP SCAN: 0x%08x\n", (uint32_t)(uintptr_t)scanned);
	if (!rsdp || !root)
		guest_fail("no RSDP or root table");
	gprintf("RSDP REVISION: %u\n", rsdp->revision);
	gprintf("ROOT: %c%c%c%c at 0x%08x checksum %s\n", root->signature[0], root->signature[1],
		root->signature[2], root->signature[3], (uint32_t)(uintptr_t)root,
		checksum8(root, root->length) ? "bad" : "ok");
	bad |= checksum8(root, root->length) != 0;
	for (uint32_t i = 0; i < acpi_root_count(root); i++) {
		const struct acpi_header *h = acpi_root_entry(root, i);

		if (!h) {
			gprintf("TABLE %u: unreachable\n", i);
			bad = 1;
			continue;
		}
		gprintf("TABLE: %c%c%c%c rev %u len %u checksum %s\n", h->signature[0],
			h->signature[1], h->signature[2], h->signature[3], h->revision, h->length,
			checksum8(h, h->length) ? "bad" : "ok");
		bad |= checksum8(h, h->length) != 0;
	}
	fadt = acpi_table("FACP");
	dsdt = acpi_table("DSDT");
	if (!fadt || !dsdt || !acpi_table("APIC"))
		guest_fail("FACP, DSDT or APIC missing or with a bad checksum");
	gprintf("TABLE: DSDT rev %u len %u checksum ok\n", dsdt->revision, dsdt->length);
	gprintf("CHECKSUMS: %s\n", bad ? "bad" : "ok");
	gprintf("FADT HW_REDUCED: %s\n",
		*(const uint32_t *)((const uint8_t *)fadt + FADT_FLAGS) & FADT_FLAG_HW_REDUCED
		    ? "yes"
		    : "no");
	if (fadt->length >= FADT_SLEEP_STATUS_REG + sizeof(struct acpi_gas)) {
		const struct acpi_gas *ctl =
		    (const void *)((const uint8_t *)fadt + FADT_SLEEP_CONTROL_REG);

		gprintf("FADT SLEEP_CONTROL: space=%u width=%u addr=0x%llx\n", ctl->space_id,
			ctl->bit_width, ctl->address);
	}
	gprintf("DSDT S5 SLP_TYP: %u\n", acpi_s5_slp_typ());
	report_dsdt_com1(dsdt);
	report_madt();
}
