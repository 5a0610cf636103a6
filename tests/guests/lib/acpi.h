/* Finding and reading the VMM's ACPI tables: RSDP, XSDT, FADT, MADT, DSDT. */
#ifndef GUEST_ACPI_H
#define GUEST_ACPI_H

#include <stdint.h>

struct acpi_rsdp {
	char signature[8];
	uint8_t checksum;
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_address;
	uint32_t length;
	uint64_t xsdt_address;
	uint8_t extended_checksum;
	uint8_t reserved[3];
} __attribute__((packed));

struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	uint32_t creator_id;
	uint32_t creator_revision;
} __attribute__((packed));

struct acpi_gas {
	uint8_t space_id; /* 0 SystemMemory, 1 SystemIO */
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;
	uint64_t address;
} __attribute__((packed));

#define ACPI_SPACE_MEMORY 0
#define ACPI_SPACE_IO 1

/* FADT byte offsets (ACPI 6.x). */
#define FADT_DSDT 40
#define FADT_PM1A_CNT_BLK 64
#define FADT_FLAGS 112
#define FADT_RESET_REG 116
#define FADT_RESET_VALUE 128
#define FADT_X_DSDT 140
#define FADT_SLEEP_CONTROL_REG 244
#define FADT_SLEEP_STATUS_REG 256
#define FADT_FLAG_RESET_REG_SUP (1u << 10)
#define FADT_FLAG_HW_REDUCED (1u << 20)

/* A valid RSDP (signature, both checksums) at addr, or NULL. */
const struct acpi_rsdp *acpi_rsdp_at(uint64_t addr);
/* Scans 0xE0000-0xFFFFF on 16-byte boundaries. */
const struct acpi_rsdp *acpi_rsdp_scan(void);
/* The boot info's RSDP, else the scanned one. */
const struct acpi_rsdp *acpi_rsdp(void);

/* The XSDT (or RSDT for revision 0) entries: count, and table i (NULL if out of reach). */
const struct acpi_header *acpi_root(const struct acpi_rsdp *rsdp);
uint32_t acpi_root_count(const struct acpi_header *root);
const struct acpi_header *acpi_root_entry(const struct acpi_header *root, uint32_t i);
/* A table by signature (DSDT through the FADT), with a valid checksum, or NULL. */
const struct acpi_header *acpi_table(const char *sig);
/* A mapped table header at addr if its length is sane, else NULL. */
const struct acpi_header *acpi_header_at(uint64_t addr);

/* MADT: the enabled local APIC ids, up to max; returns how many. */
int madt_cpu_ids(uint8_t *ids, int max);

/* Writes value to a GAS register (8-32 bits, SystemIO or SystemMemory below 4 GiB). */
int acpi_gas_write(const struct acpi_gas *gas, uint32_t value);
/* SLP_TYP of \_S5 from the DSDT (5 if it cannot be read). */
uint8_t acpi_s5_slp_typ(void);
void __attribute__((noreturn)) acpi_poweroff(void);
/* Writes the FADT reset register; returns only if that did not reset. */
void acpi_reset(void);

#endif
