/* The migration's messages: framing and the parsers of what a peer sent. Pure (no I/O):
 * the receiver trusts a payload only after these said yes, and tests/fuzz/fuzz_migration.c
 * drives them with arbitrary bytes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/migration/migration.h"
#include "vmm/snapshot/state_file.h"

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

const char *mig_type_name(unsigned type)
{
	static const char *const names[] = {
	    [MIG_HELLO] = "HELLO",   [MIG_ACK] = "ACK",	    [MIG_ERROR] = "ERROR",
	    [MIG_MEMORY] = "MEMORY", [MIG_STATE] = "STATE", [MIG_COMPLETE] = "COMPLETE",
	    [MIG_RAM_FD] = "RAM_FD",
	};
	if (type < sizeof(names) / sizeof(names[0]) && names[type])
		return names[type];
	return "unknown";
}

/* The most a payload of each type may be: a peer that says more is refused before the
 * receiver allocates or reads anything. */
static uint64_t max_len(unsigned type)
{
	switch (type) {
	case MIG_HELLO:
		return MIG_HELLO_FIXED + MIG_CPUID_MAX * MIG_CPUID_ENTRY_SIZE + MIG_CONFIG_MAX;
	case MIG_ERROR:
		return MIG_ERROR_MAX;
	case MIG_MEMORY:
		return MIG_MEMORY_FIXED + (uint64_t)MIG_MAX_PAGES_PER_MSG * MIG_PAGE;
	case MIG_STATE:
		return SNAP_FILE_MAX;
	case MIG_RAM_FD:
		return MIG_RAM_FD_LEN;
	default: /* ACK, COMPLETE */
		return 0;
	}
}

int mig_parse_header(const uint8_t h[MIG_HEADER_SIZE], struct mig_header *out, vs_err_t *err)
{
	uint32_t magic = get32(h);
	if (magic != MIG_MAGIC)
		return vs_err(err, 0, "not a vessel migration stream (magic %08x)", magic);
	uint16_t type = (uint16_t)(h[4] | h[5] << 8);
	uint16_t flags = (uint16_t)(h[6] | h[7] << 8);
	uint64_t len = get64(h + 8);
	if (type < MIG_HELLO || type > MIG_RAM_FD)
		return vs_err(err, 0, "message of unknown type %u", type);
	if (flags)
		return vs_err(err, 0, "%s message with reserved flags %#x", mig_type_name(type),
			      flags);
	if (len > max_len(type))
		return vs_err(err, 0, "%s message of %llu bytes (at most %llu)",
			      mig_type_name(type), (unsigned long long)len,
			      (unsigned long long)max_len(type));
	if (type == MIG_RAM_FD && len != MIG_RAM_FD_LEN)
		return vs_err(err, 0, "RAM_FD message of %llu bytes (%u)", (unsigned long long)len,
			      MIG_RAM_FD_LEN);
	out->type = type;
	out->len = len;
	return 0;
}

void mig_put_header(uint8_t h[MIG_HEADER_SIZE], enum mig_type type, uint64_t len)
{
	put32(h, MIG_MAGIC);
	h[4] = (uint8_t)type;
	h[5] = (uint8_t)(type >> 8);
	h[6] = h[7] = 0;
	put64(h + 8, len);
}

int mig_parse_hello(const uint8_t *p, size_t len, struct mig_hello *out, vs_err_t *err)
{
	if (len < MIG_HELLO_FIXED)
		return vs_err(err, 0, "HELLO of %zu bytes (at least %u)", len, MIG_HELLO_FIXED);
	struct mig_hello h = {
	    .version = get32(p),
	    .ncpus = get32(p + 4),
	    .ram_size = get64(p + 8),
	    .ncpuid = get32(p + 16),
	    .config_len = get32(p + 20),
	};
	if (h.version != MIG_VERSION)
		return vs_err(err, 0,
			      "the source speaks migration protocol version %u, this vessel %u",
			      h.version, MIG_VERSION);
	if (h.ncpus == 0)
		return vs_err(err, 0, "HELLO: 0 vCPUs");
	if (h.ram_size == 0 || h.ram_size % MIG_PAGE)
		return vs_err(err, 0, "HELLO: RAM size %llu is not a positive multiple of 4 KiB",
			      (unsigned long long)h.ram_size);
	if (h.ncpuid == 0 || h.ncpuid > MIG_CPUID_MAX)
		return vs_err(err, 0, "HELLO: %u CPUID entries (1 to %u)", h.ncpuid, MIG_CPUID_MAX);
	if (h.config_len == 0 || h.config_len > MIG_CONFIG_MAX)
		return vs_err(err, 0, "HELLO: config of %u bytes (1 to %u)", h.config_len,
			      MIG_CONFIG_MAX);
	/* both counts are bounded above, so this sum cannot wrap */
	uint64_t want = MIG_HELLO_FIXED + (uint64_t)h.ncpuid * MIG_CPUID_ENTRY_SIZE + h.config_len;
	if (want != len)
		return vs_err(err, 0, "HELLO of %zu bytes, its counts make %llu", len,
			      (unsigned long long)want);
	h.cpuid = p + MIG_HELLO_FIXED;
	h.config = (const char *)p + MIG_HELLO_FIXED + h.ncpuid * MIG_CPUID_ENTRY_SIZE;
	*out = h;
	return 0;
}

uint8_t *mig_build_hello(const struct mig_hello *h, size_t *len, vs_err_t *err)
{
	size_t n = MIG_HELLO_FIXED + (size_t)h->ncpuid * MIG_CPUID_ENTRY_SIZE + h->config_len;
	uint8_t *p = malloc(n);
	if (!p) {
		vs_err(err, ENOMEM, "HELLO message");
		return NULL;
	}
	put32(p, h->version);
	put32(p + 4, h->ncpus);
	put64(p + 8, h->ram_size);
	put32(p + 16, h->ncpuid);
	put32(p + 20, h->config_len);
	memcpy(p + MIG_HELLO_FIXED, h->cpuid, (size_t)h->ncpuid * MIG_CPUID_ENTRY_SIZE);
	memcpy(p + MIG_HELLO_FIXED + (size_t)h->ncpuid * MIG_CPUID_ENTRY_SIZE, h->config,
	       h->config_len);
	*len = n;
	return p;
}

int mig_parse_memory(const uint8_t p[MIG_MEMORY_FIXED], uint64_t len, uint64_t ram_size,
		     struct mig_memory *out, vs_err_t *err)
{
	if (len < MIG_MEMORY_FIXED)
		return vs_err(err, 0, "MEMORY of %llu bytes (at least %u)", (unsigned long long)len,
			      MIG_MEMORY_FIXED);
	uint64_t off = get64(p);
	uint32_t pages = get32(p + 8);
	if (get32(p + 12))
		return vs_err(err, 0, "MEMORY: reserved field not zero");
	if (pages == 0 || pages > MIG_MAX_PAGES_PER_MSG)
		return vs_err(err, 0, "MEMORY: %u pages (1 to %u)", pages, MIG_MAX_PAGES_PER_MSG);
	if (len != MIG_MEMORY_FIXED + (uint64_t)pages * MIG_PAGE)
		return vs_err(err, 0, "MEMORY of %llu bytes for %u pages", (unsigned long long)len,
			      pages);
	if (off % MIG_PAGE)
		return vs_err(err, 0, "MEMORY at offset %#llx: not page-aligned",
			      (unsigned long long)off);
	if (off >= ram_size || (uint64_t)pages * MIG_PAGE > ram_size - off)
		return vs_err(err, 0, "MEMORY [%#llx, +%u pages) outside the %llu bytes of RAM",
			      (unsigned long long)off, pages, (unsigned long long)ram_size);
	*out = (struct mig_memory){.offset = off, .pages = pages};
	return 0;
}
