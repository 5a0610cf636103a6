#include "vmm/bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int bus_add(struct bus *b, uint64_t base, uint64_t len, const char *name, bus_io_fn fn,
	    void *opaque, vs_err_t *err)
{
	if (len == 0 || base + len < base)
		return vs_err(err, 0, "bus: bad range for %s", name);
	size_t i = 0;
	while (i < b->n && b->ranges[i].base < base)
		i++;
	if (i > 0 && b->ranges[i - 1].base + b->ranges[i - 1].len > base)
		return vs_err(err, 0, "bus: %s overlaps %s", name, b->ranges[i - 1].name);
	if (i < b->n && base + len > b->ranges[i].base)
		return vs_err(err, 0, "bus: %s overlaps %s", name, b->ranges[i].name);
	struct bus_range *r = realloc(b->ranges, (b->n + 1) * sizeof(*r));
	if (!r)
		return vs_err(err, ENOMEM, "bus: add %s", name);
	memmove(r + i + 1, r + i, (b->n - i) * sizeof(*r));
	r[i] = (struct bus_range){base, len, name, fn, opaque};
	b->ranges = r;
	b->n++;
	return 0;
}

const struct bus_range *bus_find(const struct bus *b, uint64_t addr)
{
	for (size_t i = 0; i < b->n; i++)
		if (addr >= b->ranges[i].base && addr - b->ranges[i].base < b->ranges[i].len)
			return &b->ranges[i];
	return NULL;
}

bool bus_remove(struct bus *b, uint64_t base)
{
	for (size_t i = 0; i < b->n; i++) {
		if (b->ranges[i].base != base)
			continue;
		memmove(b->ranges + i, b->ranges + i + 1, (b->n - i - 1) * sizeof(*b->ranges));
		b->n--;
		return true;
	}
	return false;
}

void bus_free(struct bus *b)
{
	free(b->ranges);
	b->ranges = NULL;
	b->n = 0;
}

bool bus_access(const struct bus *b, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
	if (len != 1 && len != 2 && len != 4 && len != 8)
		return false;
	size_t lo = 0, hi = b->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct bus_range *r = &b->ranges[mid];
		if (addr < r->base) {
			hi = mid;
		} else if (addr - r->base >= r->len) {
			lo = mid + 1;
		} else {
			/* an access straddling the end of a device is not the device's */
			if (len > r->len - (addr - r->base))
				return false;
			r->fn(r->opaque, addr - r->base, data, len, is_write);
			return true;
		}
	}
	return false;
}

void bus_each_byte(void (*fn)(void *opaque, uint64_t offset, uint8_t *byte, bool is_write),
		   void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	for (uint32_t i = 0; i < len; i++)
		fn(opaque, offset + i, &data[i], is_write);
}
