/*
 * The ACPI the guests need: find the RSDP, walk the XSDT, read the MADT, and power off or
 * reset through the FADT's registers. Everything is read as untrusted: addresses must be
 * below 4 GiB (paging is off) and lengths sane before a byte is summed.
 */
#include "acpi.h"
#include "guest.h"

#define MAX_TABLE_LEN (1u << 20)

static int reachable(uint64_t addr, uint64_t len)
{
	return addr && addr < 0x100000000ull && len <= 0x100000000ull - addr;
}

const struct acpi_rsdp *acpi_rsdp_at(uint64_t addr)
{
	const struct acpi_rsdp *r = (const struct acpi_rsdp *)(uint32_t)addr;

	if (!reachable(addr, sizeof(*r)) || memcmp(r->signature, "RSD PTR ", 8) || checksum8(r, 20))
		return NULL;
	if (r->revision >= 2 &&
	    (r->length < sizeof(*r) || r->length > 4096 || checksum8(r, r->length)))
		return NULL;
	return r;
}

const struct acpi_rsdp *acpi_rsdp_scan(void)
{
	for (uint32_t p = 0xe0000; p < 0x100000; p += 16) {
		const uint32_t *w = (const uint32_t *)p;

		/* "RSD " "PTR " as two words: the cheapest test where instructions are dear */
		if (w[0] == 0x20445352 && w[1] == 0x20525450 && acpi_rsdp_at(p))
			return (const struct acpi_rsdp *)p;
	}
	return NULL;
}

const struct acpi_rsdp *acpi_rsdp(void)
{
	static const struct acpi_rsdp *cached;

	if (!cached)
		cached = acpi_rsdp_at(start_info->rsdp_paddr);
	if (!cached)
		cached = acpi_rsdp_scan();
	return cached;
}

const struct acpi_header *acpi_header_at(uint64_t addr)
{
	const struct acpi_header *h = (const struct acpi_header *)(uint32_t)addr;

	if (!reachable(addr, sizeof(*h)) || h->length < sizeof(*h) || h->length > MAX_TABLE_LEN ||
	    !reachable(addr, h->length))
		return NULL;
	return h;
}

const struct acpi_header *acpi_root(const struct acpi_rsdp *rsdp)
{
	if (!rsdp)
		return NULL;
	return acpi_header_at(rsdp->revision >= 2 ? rsdp->xsdt_address : rsdp->rsdt_address);
}

static int root_is_xsdt(const struct acpi_header *root)
{
	return !memcmp(root->signature, "XSDT", 4);
}

uint32_t acpi_root_count(const struct acpi_header *root)
{
	return root ? (root->length - sizeof(*root)) / (root_is_xsdt(root) ? 8 : 4) : 0;
}

const struct acpi_header *acpi_root_entry(const struct acpi_header *root, uint32_t i)
{
	const uint8_t *entries = (const uint8_t *)(root + 1);
	uint64_t addr;

	if (i >= acpi_root_count(root))
		return NULL;
	if (root_is_xsdt(root))
		memcpy(&addr, entries + 8 * i, 8);
	else
		addr = ((const uint32_t *)entries)[i];
	return acpi_header_at(addr);
}

static const struct acpi_header *valid(const struct acpi_header *h, const char *sig)
{
	return h && !memcmp(h->signature, sig, 4) && !checksum8(h, h->length) ? h : NULL;
}

static const struct acpi_header *find_table(const char *sig)
{
	const struct acpi_header *root = acpi_root(acpi_rsdp());

	if (!memcmp(sig, "DSDT", 4)) {
		const uint8_t *fadt = (const uint8_t *)acpi_table("FACP");
		uint64_t x = 0;

		if (!fadt)
			return NULL;
		if (((const struct acpi_header *)fadt)->length >= FADT_X_DSDT + 8)
			memcpy(&x, fadt + FADT_X_DSDT, 8);
		if (!x)
			x = *(const uint32_t *)(fadt + FADT_DSDT);
		return valid(acpi_header_at(x), sig);
	}
	for (uint32_t i = 0; i < acpi_root_count(root); i++) {
		const struct acpi_header *h = valid(acpi_root_entry(root, i), sig);

		if (h)
			return h;
	}
	return NULL;
}

const struct acpi_header *acpi_table(const char *sig)
{
	/* the VMM's tables do not move: walk and checksum each one once */
	static struct {
		char sig[4];
		const struct acpi_header *table;
	} cache[4];
	static unsigned used;

	for (unsigned i = 0; i < used; i++)
		if (!memcmp(cache[i].sig, sig, 4))
			return cache[i].table;
	const struct acpi_header *h = find_table(sig);

	if (h && used < 4) {
		memcpy(cache[used].sig, sig, 4);
		cache[used++].table = h;
	}
	return h;
}

int madt_cpu_ids(uint8_t *ids, int max)
{
	const struct acpi_header *madt = acpi_table("APIC");
	const uint8_t *p, *end;
	int n = 0;

	if (!madt)
		return -1;
	/* entries follow the local APIC address and flags words */
	p = (const uint8_t *)madt + sizeof(*madt) + 8;
	end = (const uint8_t *)madt + madt->length;
	while (p + 2 <= end && p[1] >= 2 && p + p[1] <= end) {
		if (p[0] == 0 && p[1] >= 8 && (p[4] & 1) && n < max)
			ids[n++] = p[3];
		p += p[1];
	}
	return n;
}

int acpi_gas_write(const struct acpi_gas *gas, uint32_t value)
{
	uint64_t a = gas->address;

	if (!a)
		return -1;
	if (gas->space_id == ACPI_SPACE_IO && a <= 0xffff) {
		if (gas->bit_width == 32)
			outl((uint16_t)a, value);
		else if (gas->bit_width == 16)
			outw((uint16_t)a, (uint16_t)value);
		else
			outb((uint16_t)a, (uint8_t)value);
		return 0;
	}
	if (gas->space_id == ACPI_SPACE_MEMORY && reachable(a, 4)) {
		if (gas->bit_width == 32)
			*(volatile uint32_t *)(uint32_t)a = value;
		else if (gas->bit_width == 16)
			*(volatile uint16_t *)(uint32_t)a = (uint16_t)value;
		else
			*(volatile uint8_t *)(uint32_t)a = (uint8_t)value;
		return 0;
	}
	return -1;
}

/* The first element of the \_S5 package: Name(_S5_, Package(n) {SLP_TYP, ...}). */
uint8_t acpi_s5_slp_typ(void)
{
	const struct acpi_header *dsdt = acpi_table("DSDT");
	const uint8_t *p, *end;

	if (!dsdt)
		return 5;
	p = (const uint8_t *)(dsdt + 1);
	end = (const uint8_t *)dsdt + dsdt->length;
	for (; p + 12 <= end; p++) {
		const uint8_t *q;

		/* "_S5_" as one word: a memcmp call per byte is dear when interpreted */
		if (*(const uint32_t *)p != 0x5f35535f || p[4] != 0x12) /* PackageOp */
			continue;
		q = p + 5 + 1 + (p[5] >> 6) + 1; /* PkgLength bytes, then NumElements */
		if (q + 2 > end)
			break;
		if (q[0] == 0x0a) /* BytePrefix */
			return q[1];
		if (q[0] <= 1) /* ZeroOp, OneOp */
			return q[0];
		break;
	}
	return 5;
}

void acpi_poweroff(void)
{
	const uint8_t *fadt = (const uint8_t *)acpi_table("FACP");
	uint32_t len = fadt ? ((const struct acpi_header *)fadt)->length : 0;
	uint8_t typ = acpi_s5_slp_typ();

	if (len >= FADT_SLEEP_CONTROL_REG + sizeof(struct acpi_gas) &&
	    !acpi_gas_write((const struct acpi_gas *)(fadt + FADT_SLEEP_CONTROL_REG),
			    (uint32_t)((typ & 7) << 2) | (1u << 5))) {
		/* written: the VMM ends the machine; fall through only if it did not */
	} else if (len >= FADT_PM1A_CNT_BLK + 4 && *(const uint32_t *)(fadt + FADT_PM1A_CNT_BLK)) {
		/* a full-hardware FADT (e.g. QEMU q35): SLP_TYP and SLP_EN in PM1a_CNT */
		outw((uint16_t) * (const uint32_t *)(fadt + FADT_PM1A_CNT_BLK),
		     (uint16_t)(((typ & 7) << 10) | (1u << 13)));
	}
	/* QEMU acts on the request from its main loop, not at once */
	tsc_delay(STOP_WAIT_TICKS);
	guest_fail(fadt ? "poweroff through the FADT did not stop the machine" : "no FADT");
}

void acpi_reset(void)
{
	const uint8_t *fadt = (const uint8_t *)acpi_table("FACP");

	if (!fadt || ((const struct acpi_header *)fadt)->length <= FADT_RESET_VALUE) {
		gprintf("FAIL: no FADT reset register\n");
		return;
	}
	if (acpi_gas_write((const struct acpi_gas *)(fadt + FADT_RESET_REG),
			   fadt[FADT_RESET_VALUE]))
		gprintf("FAIL: FADT reset register unusable\n");
}
