/* ACPI tables of a hardware-reduced machine: RSDP -> XSDT -> FACP (-> DSDT), APIC.
 * Built in a host buffer for a given guest-physical base (pure, testable), then
 * copied into guest RAM; `vessel vm dump-acpi DIR` writes them as files. */
#ifndef VESSEL_VMM_BOOT_ACPI_H
#define VESSEL_VMM_BOOT_ACPI_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* A virtio-mmio device to declare in the DSDT (LNRO0005), for the virtio work. */
struct acpi_virtio_mmio {
	uint64_t base;
	uint32_t size;
	uint32_t gsi;
};

/* The VM generation ID (devices/vmgenid.h): a VMGENCTR device whose ADDR gives the
 * 16 bytes' guest-physical address, and a Generic Event Device (ACPI0013) on gsi whose
 * _EVT notifies it (0x80) when the ID changes. */
struct acpi_vmgenid {
	uint64_t addr;
	uint32_t gsi;
};

struct acpi_config {
	unsigned ncpus; /* Local APIC ids 0..ncpus-1 */
	const struct acpi_virtio_mmio *virtio;
	size_t nvirtio;
	const struct acpi_vmgenid *vmgenid; /* NULL: none */
};

#define ACPI_MAX_TABLES 5

struct acpi_table_ref {
	char sig[5]; /* "RSDP" for the RSD PTR structure */
	size_t offset, len;
};

struct acpi_tables {
	uint8_t *buf; /* all tables, as they lie in guest memory from gpa on */
	size_t len;
	uint64_t gpa;
	struct acpi_table_ref t[ACPI_MAX_TABLES];
	size_t n;
};

/* The RSDP comes first, at gpa (16-byte aligned). */
int acpi_build(const struct acpi_config *cfg, uint64_t gpa, struct acpi_tables *out, vs_err_t *err);
void acpi_tables_free(struct acpi_tables *t);

/* Sum of bytes mod 256 (0 for a table with a right checksum). */
uint8_t acpi_sum(const uint8_t *p, size_t n);

/* Writes each table to DIR/<sig>.dat (facp.dat, apic.dat, ...). */
int acpi_dump(const struct acpi_tables *t, const char *dir, vs_err_t *err);

#endif
