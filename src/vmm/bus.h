/* Address ranges -> device handlers, for port I/O and for MMIO exits.
 *
 * Ranges change only while no vCPU runs (set-up, a failed device's unplug, later a
 * paused VM), so lookups from vCPU threads need no lock; each device locks its own
 * state. */
#ifndef VESSEL_VMM_BUS_H
#define VESSEL_VMM_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* offset is relative to the range base; the access [offset, offset+len) lies inside
 * the range and len is 1, 2, 4 or 8. Reads fill data[0..len). */
typedef void (*bus_io_fn)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			  bool is_write);

struct bus_range {
	uint64_t base, len;
	const char *name;
	bus_io_fn fn;
	void *opaque;
};

struct bus {
	struct bus_range *ranges; /* sorted by base, never overlapping */
	size_t n;
};

int bus_add(struct bus *b, uint64_t base, uint64_t len, const char *name, bus_io_fn fn,
	    void *opaque, vs_err_t *err);
/* The range holding addr, or NULL. */
const struct bus_range *bus_find(const struct bus *b, uint64_t addr);
/* Removes the range that starts at base (a device unplugged); false if there is none. */
bool bus_remove(struct bus *b, uint64_t base);
void bus_free(struct bus *b);

/* Dispatches one access. Returns false when no range holds all of it; the caller
 * then treats it as unclaimed (reads all ones, writes ignored). */
bool bus_access(const struct bus *b, uint64_t addr, uint8_t *data, uint32_t len, bool is_write);

/* For byte-register devices: runs fn on each byte of a wider access. */
void bus_each_byte(void (*fn)(void *opaque, uint64_t offset, uint8_t *byte, bool is_write),
		   void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif
