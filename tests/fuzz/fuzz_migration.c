/* The migration receiver's parsers (src/vmm/migration/wire.c) on a stream of arbitrary
 * bytes, read as the receiver reads it: a header, checked, then its payload. Whatever the
 * source sends must give a HELLO whose CPUID and config lie inside its payload, a MEMORY
 * run inside guest RAM, a STATE the state-file parser takes or refuses, or a clear error:
 * never a crash, leak or out-of-bounds read. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/error.h"
#include "vmm/migration/migration.h"
#include "vmm/snapshot/snapshot.h"

#define RAM_SIZE (128ull << 20)

static void one(const struct mig_header *h, const uint8_t *p)
{
	vs_err_t err = NULL;
	volatile uint8_t sink = 0;
	if (h->type == MIG_HELLO) {
		struct mig_hello hello;
		if (mig_parse_hello(p, h->len, &hello, &err) == 0) {
			const uint8_t *end = p + h->len;
			if (hello.cpuid + (size_t)hello.ncpuid * MIG_CPUID_ENTRY_SIZE > end ||
			    (const uint8_t *)hello.config + hello.config_len != end ||
			    hello.ram_size % MIG_PAGE || !hello.ncpus)
				__builtin_trap();
			for (uint32_t i = 0; i < hello.config_len; i++)
				sink ^= (uint8_t)hello.config[i];
		}
	} else if (h->type == MIG_MEMORY && h->len >= MIG_MEMORY_FIXED) {
		struct mig_memory m;
		if (mig_parse_memory(p, h->len, RAM_SIZE, &m, &err) == 0 &&
		    (m.offset % MIG_PAGE || m.offset + (uint64_t)m.pages * MIG_PAGE > RAM_SIZE ||
		     MIG_MEMORY_FIXED + (uint64_t)m.pages * MIG_PAGE != h->len))
			__builtin_trap();
	} else if (h->type == MIG_RAM_FD && h->len != MIG_RAM_FD_LEN) {
		__builtin_trap(); /* its 8 bytes are read as they are: the header checked them */
	} else if (h->type == MIG_STATE) {
		struct snapshot s;
		if (snapshot_open_bytes(p, h->len, &s, &err) == 0)
			snapshot_close(&s);
	}
	(void)sink;
	vs_err_free(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	while (size >= MIG_HEADER_SIZE) {
		struct mig_header h;
		vs_err_t err = NULL;
		int rc = mig_parse_header(data, &h, &err);
		vs_err_free(&err);
		if (rc < 0)
			break;
		data += MIG_HEADER_SIZE;
		size -= MIG_HEADER_SIZE;
		if (h.len > size)
			break; /* the receiver would wait for the rest: a truncated stream */
		one(&h, data);
		data += h.len;
		size -= h.len;
	}
	return 0;
}
