/* What every tiny guest gets: the boot info, serial output, ACPI, poweroff. */
#ifndef GUEST_GUEST_H
#define GUEST_GUEST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "io.h"
#include "start_info.h"

#define MAX_CPUS 64

/* Set by the entry code: the PVH boot info (EBX at entry) and the TSC at the entry point. */
extern const struct hvm_start_info *start_info;
extern uint64_t entry_tsc;

/* Each guest's body; returning powers the machine off. */
void guest_main(void);

/* COM1, polled. */
void serial_putc(char c);
int serial_getc(void);

/* n / d (and the remainder, if rem): 32-bit code cannot divide a u64 without libgcc. */
uint64_t udiv64(uint64_t n, uint32_t d, uint32_t *rem);

/* printf subset (%s %c %d %u %x, l/ll, zero pad and width), one call = one atomic write. */
void gprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The byte sum of len bytes at p: 0 for a valid ACPI table. */
uint8_t checksum8(const void *p, uint32_t len);

/* Prints `FAIL: what` and triple-faults: the host sees exit status 4, never a hang. */
void __attribute__((noreturn)) guest_fail(const char *what);
void __attribute__((noreturn)) triple_fault(void);
/* Spins for about ticks TSC ticks: how long a guest gives the VMM to act on a request. */
void tsc_delay(uint64_t ticks);
#define STOP_WAIT_TICKS 3000000000ull

const char *guest_cmdline(void);
const struct hvm_memmap_table_entry *guest_memmap(uint32_t *count);
uint64_t guest_ram_bytes(void);

/* What gcc may call on its own in freestanding code. */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#endif
