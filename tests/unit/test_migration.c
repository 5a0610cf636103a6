/* The migration's wire (src/vmm/migration/wire.c, endpoint.c): what the sender builds
 * parses back; every header or payload a peer could lie with is refused before it is
 * trusted, with an error that says which; the URLs; a message through a socket; a local
 * migration's RAM, a memfd passed through a socket and mapped by the receiving side. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/error.h"
#include "vmm/memory.h"
#include "vmm/migration/migration.h"

#define RAM (128ull << 20)

static char *header_error(enum mig_type type, uint64_t len, uint32_t magic, uint16_t flags)
{
	uint8_t h[MIG_HEADER_SIZE];
	mig_put_header(h, type, len);
	memcpy(h, &magic, 4);
	memcpy(h + 6, &flags, 2);
	struct mig_header mh;
	vs_err_t err = NULL;
	if (mig_parse_header(h, &mh, &err) == 0) {
		cr_assert_eq(mh.type, type);
		cr_assert_eq(mh.len, len);
		return NULL;
	}
	char *m = strdup(err->msg);
	vs_err_free(&err);
	return m;
}

Test(migration, headers_are_checked_before_the_payload)
{
	cr_assert_null(header_error(MIG_HELLO, 100, MIG_MAGIC, 0));
	cr_assert_null(header_error(MIG_MEMORY, MIG_MEMORY_FIXED + 256 * 4096, MIG_MAGIC, 0));
	cr_assert_null(header_error(MIG_COMPLETE, 0, MIG_MAGIC, 0));
	char *m = header_error(MIG_HELLO, 100, 0x12345678, 0);
	cr_assert(m && strstr(m, "not a vessel migration stream"), "%s", m);
	free(m);
	m = header_error(MIG_HELLO, 100, MIG_MAGIC, 1);
	cr_assert(m && strstr(m, "reserved flags"), "%s", m);
	free(m);
	m = header_error(8, 0, MIG_MAGIC, 0);
	cr_assert(m && strstr(m, "unknown type 8"), "%s", m);
	free(m);
	cr_assert_null(header_error(MIG_RAM_FD, MIG_RAM_FD_LEN, MIG_MAGIC, 0));
	m = header_error(MIG_RAM_FD, 0, MIG_MAGIC, 0);
	cr_assert(m && strstr(m, "RAM_FD message of 0 bytes"), "%s", m);
	free(m);
	m = header_error(MIG_RAM_FD, 9, MIG_MAGIC, 0);
	cr_assert(m && strstr(m, "RAM_FD message of 9 bytes"), "%s", m);
	free(m);
	m = header_error(MIG_MEMORY, MIG_MEMORY_FIXED + 257 * 4096, MIG_MAGIC, 0);
	cr_assert(m && strstr(m, "MEMORY message of"), "%s", m);
	free(m);
	m = header_error(MIG_COMPLETE, 1, MIG_MAGIC, 0);
	cr_assert(m && strstr(m, "COMPLETE message of 1 bytes"), "%s", m);
	free(m);
	m = header_error(MIG_STATE, 1ull << 40, MIG_MAGIC, 0);
	cr_assert(m && strstr(m, "STATE message"), "%s", m);
	free(m);
}

static uint8_t *hello(size_t *len, uint32_t ncpuid)
{
	static uint8_t cpuid[4 * MIG_CPUID_ENTRY_SIZE];
	struct mig_hello h = {.version = MIG_VERSION,
			      .ncpus = 2,
			      .ram_size = RAM,
			      .ncpuid = ncpuid,
			      .config_len = 2,
			      .cpuid = cpuid,
			      .config = "{}"};
	vs_err_t err = NULL;
	uint8_t *p = mig_build_hello(&h, len, &err);
	cr_assert(p);
	return p;
}

static char *hello_error(const uint8_t *p, size_t len)
{
	struct mig_hello h;
	vs_err_t err = NULL;
	if (mig_parse_hello(p, len, &h, &err) == 0)
		return NULL;
	char *m = strdup(err->msg);
	vs_err_free(&err);
	return m;
}

Test(migration, hello_round_trip_and_lies)
{
	size_t len;
	uint8_t *p = hello(&len, 4);
	struct mig_hello h;
	vs_err_t err = NULL;
	cr_assert_eq(mig_parse_hello(p, len, &h, &err), 0);
	cr_assert_eq(h.ncpus, 2);
	cr_assert_eq(h.ram_size, RAM);
	cr_assert_eq(h.ncpuid, 4);
	cr_assert_eq(h.config_len, 2);
	cr_assert_eq(memcmp(h.config, "{}", 2), 0);
	cr_assert_eq(h.cpuid, p + MIG_HELLO_FIXED);
	/* every truncation is refused */
	for (size_t n = 0; n < len; n++) {
		char *m = hello_error(p, n);
		cr_assert(m, "a HELLO cut to %zu bytes was taken", n);
		free(m);
	}
	struct {
		size_t at;
		uint32_t v;
		const char *says;
	} lies[] = {
	    {0, 2, "protocol version 2"},   {4, 0, "0 vCPUs"},
	    {8, 4095, "multiple of 4 KiB"}, {16, 0, "0 CPUID entries"},
	    {16, 3, "its counts make"},	    {16, 257, "257 CPUID entries"},
	    {20, 0, "config of 0 bytes"},   {20, 0xffffffff, "config of 4294967295 bytes"},
	};
	for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		uint8_t *q = malloc(len);
		memcpy(q, p, len);
		memcpy(q + lies[i].at, &lies[i].v, 4);
		char *m = hello_error(q, len);
		cr_assert(m && strstr(m, lies[i].says), "lie %zu: %s", i, m ? m : "(taken)");
		free(m);
		free(q);
	}
	free(p);
}

static char *memory_error(uint64_t off, uint32_t pages, uint32_t reserved, uint64_t len)
{
	uint8_t f[MIG_MEMORY_FIXED];
	memcpy(f, &off, 8);
	memcpy(f + 8, &pages, 4);
	memcpy(f + 12, &reserved, 4);
	struct mig_memory m;
	vs_err_t err = NULL;
	if (mig_parse_memory(f, len, RAM, &m, &err) == 0) {
		cr_assert_eq(m.offset, off);
		cr_assert_eq(m.pages, pages);
		return NULL;
	}
	char *s = strdup(err->msg);
	vs_err_free(&err);
	return s;
}

Test(migration, memory_runs_lie_inside_ram)
{
	cr_assert_null(memory_error(0, 1, 0, MIG_MEMORY_FIXED + 4096));
	cr_assert_null(memory_error(RAM - 256 * 4096, 256, 0, MIG_MEMORY_FIXED + 256 * 4096));
	struct {
		uint64_t off;
		uint32_t pages, reserved;
		uint64_t len;
		const char *says;
	} bad[] = {
	    {4096, 1, 0, MIG_MEMORY_FIXED + 4095, "for 1 pages"},
	    {4096, 2, 0, MIG_MEMORY_FIXED + 4096, "for 2 pages"},
	    {100, 1, 0, MIG_MEMORY_FIXED + 4096, "not page-aligned"},
	    {RAM, 1, 0, MIG_MEMORY_FIXED + 4096, "outside"},
	    {RAM - 4096, 2, 0, MIG_MEMORY_FIXED + 2 * 4096, "outside"},
	    {UINT64_MAX & ~4095ull, 1, 0, MIG_MEMORY_FIXED + 4096, "outside"},
	    {0, 0, 0, MIG_MEMORY_FIXED, "0 pages"},
	    {0, 257, 0, MIG_MEMORY_FIXED + 257 * 4096, "257 pages"},
	    {0, 1, 1, MIG_MEMORY_FIXED + 4096, "reserved"},
	    {0, 1, 0, 8, "at least"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *m = memory_error(bad[i].off, bad[i].pages, bad[i].reserved, bad[i].len);
		cr_assert(m && strstr(m, bad[i].says), "case %zu: %s", i, m ? m : "(taken)");
		free(m);
	}
}

static char *listen_error(const char *url)
{
	vs_err_t err = NULL;
	int fd = mig_listen(url, &err);
	if (fd >= 0) {
		mig_unlisten(url, fd);
		return NULL;
	}
	char *m = strdup(err->msg);
	vs_err_free(&err);
	return m;
}

Test(migration, urls)
{
	const char *bad[][2] = {
	    {"http://x", "not unix:PATH or tcp:ADDR:PORT"},
	    {"unix:", "a Unix socket path"},
	    {"tcp:127.0.0.1", "needs an address and a port"},
	    {"tcp:127.0.0.1:0", "port must be"},
	    {"tcp:127.0.0.1:70000", "port must be"},
	    {"tcp:localhost:4444", "not a numeric IPv4 address"},
	    {"tcp:[zz]:4444", "not an IPv6 address"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *m = listen_error(bad[i][0]);
		cr_assert(m && strstr(m, bad[i][1]), "%s: %s", bad[i][0], m ? m : "(listened)");
		free(m);
	}
	char path[] = "/tmp/vessel-unit-mig-XXXXXX";
	cr_assert(mkdtemp(path));
	char url[128];
	snprintf(url, sizeof(url), "unix:%s/s", path);
	cr_assert_null(listen_error(url));
	cr_assert_eq(access(url + 5, F_OK), -1, "mig_unlisten leaves the socket file");
	rmdir(path);
}

Test(migration, a_message_through_a_socket)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	vs_err_t err = NULL;
	cr_assert_eq(mig_send_msg(sv[0], MIG_ERROR, "ab", 2, "cd", 2, &err), 0);
	uint8_t h[MIG_HEADER_SIZE];
	struct mig_header mh;
	cr_assert_eq(mig_read_full(sv[1], h, sizeof(h), &err), 0);
	cr_assert_eq(mig_parse_header(h, &mh, &err), 0);
	cr_assert_eq(mh.type, MIG_ERROR);
	cr_assert_eq(mh.len, 4);
	char buf[4];
	cr_assert_eq(mig_read_full(sv[1], buf, 4, &err), 0);
	cr_assert_eq(memcmp(buf, "abcd", 4), 0);
	close(sv[0]);
	cr_assert_eq(mig_read_full(sv[1], buf, 1, &err), -1);
	cr_assert(strstr(err->msg, "hung up"), "%s", err->msg);
	vs_err_free(&err);
	close(sv[1]);
}

/* What a local migration does with guest RAM: shared RAM's memfd goes through a Unix
 * socket with RAM_FD, and the other side maps the very same pages. */
Test(migration, shared_ram_passed_as_an_fd_is_the_same_memory)
{
	vs_err_t err = NULL;
	struct guest_mem a = {0}, b = {0};
	cr_assert_eq(guest_mem_map(&a, 4 * GUEST_MEM_MIN, GUEST_MEM_SHARED, &err), 0, "%s",
		     err ? err->msg : "");
	cr_assert(a.shared && a.fd >= 0);
	memcpy(a.host + 4096, "before", 7);
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_eq(mig_send_ram_fd(sv[0], a.ram_size, a.fd, &err), 0, "%s", err ? err->msg : "");
	uint8_t h[MIG_HEADER_SIZE], p[MIG_RAM_FD_LEN];
	struct mig_header mh;
	int fd = -1, none = -1;
	cr_assert_eq(mig_read_full_fd(sv[1], h, sizeof(h), &fd, &err), 0);
	cr_assert_eq(mig_parse_header(h, &mh, &err), 0);
	cr_assert_eq(mh.type, MIG_RAM_FD);
	cr_assert_geq(fd, 0, "no fd came with RAM_FD");
	cr_assert_eq(mig_read_full_fd(sv[1], p, sizeof(p), &none, &err), 0);
	cr_assert_eq(none, -1);
	uint64_t size = 0;
	memcpy(&size, p, 8);
	cr_assert_eq(size, a.ram_size);
	/* the wrong size is refused, the right one maps the same pages */
	cr_assert_eq(guest_mem_map_fd(&b, fd, 2 * GUEST_MEM_MIN, &err), -1);
	cr_assert(strstr(err->msg, "the VM has"), "%s", err->msg);
	vs_err_free(&err);
	cr_assert_eq(guest_mem_map_fd(&b, fd, a.ram_size, &err), 0, "%s", err ? err->msg : "");
	close(fd); /* b holds its own */
	cr_assert_str_eq((char *)b.host + 4096, "before");
	memcpy(b.host + 8192, "after", 6);
	cr_assert_str_eq((char *)a.host + 8192, "after");
	/* the balloon's discard frees the memfd's page for both: zeros on either side */
	cr_assert_eq(guest_mem_discard(&b, b.host + 4096, 4096), 0);
	cr_assert_eq(a.host[4096], 0);
	/* KSM takes private memory only */
	cr_assert_eq(guest_mem_merge(&b, &err), -1);
	cr_assert(strstr(err->msg, "shared"), "%s", err->msg);
	vs_err_free(&err);
	guest_mem_unmap(&a);
	guest_mem_unmap(&b);
	close(sv[0]);
	close(sv[1]);
}

Test(migration, only_a_memfd_is_taken_as_ram)
{
	char path[] = "/tmp/vessel-unit-ramfile-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	unlink(path);
	cr_assert_eq(ftruncate(fd, GUEST_MEM_MIN), 0);
	struct guest_mem m = {0};
	vs_err_t err = NULL;
	cr_assert_eq(guest_mem_map_fd(&m, fd, GUEST_MEM_MIN, &err), -1);
	cr_assert(strstr(err->msg, "not a memfd"), "%s", err->msg);
	vs_err_free(&err);
	close(fd);
}
