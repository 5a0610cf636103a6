#include "vmm/boot/aml.h"

#include <stdlib.h>
#include <string.h>

#define AML_ZERO 0x00
#define AML_ONE 0x01
#define AML_ONES 0xff
#define AML_NAME 0x08
#define AML_BYTE 0x0a
#define AML_WORD 0x0b
#define AML_DWORD 0x0c
#define AML_STRING 0x0d
#define AML_QWORD 0x0e
#define AML_SCOPE 0x10
#define AML_BUFFER 0x11
#define AML_PACKAGE 0x12
#define AML_EXT 0x5b
#define AML_DEVICE 0x82
#define AML_METHOD 0x14
#define AML_ARG0 0x68
#define AML_NOTIFY 0x86
#define AML_LEQUAL 0x93
#define AML_IF 0xa0
#define AML_RETURN 0xa4
#define AML_ROOT '\\'
#define AML_DUAL_NAME 0x2e
#define AML_MULTI_NAME 0x2f

void aml_free(struct aml *a)
{
	free(a->buf);
	*a = (struct aml){0};
}

static bool reserve(struct aml *a, size_t n)
{
	if (a->failed)
		return false;
	if (a->cap - a->len >= n)
		return true;
	size_t cap = a->cap ? a->cap : 256;
	while (cap - a->len < n) {
		if (cap > SIZE_MAX / 2) {
			a->failed = true;
			return false;
		}
		cap *= 2;
	}
	uint8_t *b = realloc(a->buf, cap);
	if (!b) {
		a->failed = true;
		return false;
	}
	a->buf = b;
	a->cap = cap;
	return true;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
	if (!reserve(a, n))
		return;
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

void aml_u8(struct aml *a, uint8_t v)
{
	aml_bytes(a, &v, 1);
}

void aml_u16(struct aml *a, uint16_t v)
{
	aml_bytes(a, &v, 2);
}

void aml_u32(struct aml *a, uint32_t v)
{
	aml_bytes(a, &v, 4);
}

void aml_u64(struct aml *a, uint64_t v)
{
	aml_bytes(a, &v, 8);
}

size_t aml_zeros(struct aml *a, size_t n)
{
	size_t at = a->len;
	if (reserve(a, n)) {
		memset(a->buf + a->len, 0, n);
		a->len += n;
	}
	return at;
}

size_t aml_pkglen_encode(size_t content_len, uint8_t out[4])
{
	/* the encoded length counts its own bytes too */
	if (content_len + 1 <= 0x3f) {
		out[0] = (uint8_t)(content_len + 1);
		return 1;
	}
	for (size_t n = 2; n <= 4; n++) {
		size_t total = content_len + n;
		if (total >= (1ULL << (4 + 8 * (n - 1))))
			continue;
		out[0] = (uint8_t)(((n - 1) << 6) | (total & 0x0f));
		for (size_t i = 1; i < n; i++)
			out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
		return n;
	}
	return 0;
}

size_t aml_pkg_begin(struct aml *a)
{
	return aml_zeros(a, 4);
}

void aml_pkg_end(struct aml *a, size_t mark)
{
	if (a->failed)
		return;
	size_t content = a->len - mark - 4;
	uint8_t enc[4];
	size_t n = aml_pkglen_encode(content, enc);
	if (n == 0) {
		a->failed = true;
		return;
	}
	memmove(a->buf + mark + n, a->buf + mark + 4, content);
	memcpy(a->buf + mark, enc, n);
	a->len -= 4 - n;
}

static bool name_seg(struct aml *a, const char *s, size_t n)
{
	if (n == 0 || n > 4)
		return false;
	char seg[4] = {'_', '_', '_', '_'};
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
		if (!ok)
			return false;
		seg[i] = c;
	}
	aml_bytes(a, seg, 4);
	return true;
}

void aml_name_string(struct aml *a, const char *path)
{
	if (*path == '\\') {
		aml_u8(a, AML_ROOT);
		path++;
	}
	size_t nseg = 1;
	for (const char *p = path; *p; p++)
		nseg += *p == '.';
	if (!*path || nseg > 255) {
		a->failed = true;
		return;
	}
	if (nseg == 2) {
		aml_u8(a, AML_DUAL_NAME);
	} else if (nseg > 2) {
		aml_u8(a, AML_MULTI_NAME);
		aml_u8(a, (uint8_t)nseg);
	}
	while (*path) {
		size_t n = strcspn(path, ".");
		if (!name_seg(a, path, n)) {
			a->failed = true;
			return;
		}
		path += n;
		if (*path == '.')
			path++;
	}
}

void aml_integer(struct aml *a, uint64_t v)
{
	if (v == 0) {
		aml_u8(a, AML_ZERO);
	} else if (v == 1) {
		aml_u8(a, AML_ONE);
	} else if (v <= 0xff) {
		aml_u8(a, AML_BYTE);
		aml_u8(a, (uint8_t)v);
	} else if (v <= 0xffff) {
		aml_u8(a, AML_WORD);
		aml_u16(a, (uint16_t)v);
	} else if (v <= 0xffffffff) {
		aml_u8(a, AML_DWORD);
		aml_u32(a, (uint32_t)v);
	} else {
		aml_u8(a, AML_QWORD);
		aml_u64(a, v);
	}
}

void aml_string(struct aml *a, const char *s)
{
	aml_u8(a, AML_STRING);
	aml_bytes(a, s, strlen(s) + 1);
}

uint32_t aml_eisaid_value(const char *id)
{
	/* three letters of 5 bits each, then four hex digits; stored big-endian */
	if (strlen(id) != 7)
		return 0;
	uint32_t v = 0;
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z')
			return 0;
		v = (v << 5) | (uint32_t)(id[i] - 'A' + 1);
	}
	for (int i = 3; i < 7; i++) {
		char c = id[i];
		uint32_t d;
		if (c >= '0' && c <= '9')
			d = (uint32_t)(c - '0');
		else if (c >= 'A' && c <= 'F')
			d = (uint32_t)(c - 'A' + 10);
		else
			return 0;
		v = (v << 4) | d;
	}
	return __builtin_bswap32(v);
}

void aml_eisaid(struct aml *a, const char *id)
{
	uint32_t v = aml_eisaid_value(id);
	if (!v) {
		a->failed = true;
		return;
	}
	aml_u8(a, AML_DWORD);
	aml_u32(a, v);
}

void aml_name(struct aml *a, const char *path)
{
	aml_u8(a, AML_NAME);
	aml_name_string(a, path);
}

size_t aml_scope_begin(struct aml *a, const char *path)
{
	aml_u8(a, AML_SCOPE);
	size_t mark = aml_pkg_begin(a);
	aml_name_string(a, path);
	return mark;
}

size_t aml_device_begin(struct aml *a, const char *path)
{
	aml_u8(a, AML_EXT);
	aml_u8(a, AML_DEVICE);
	size_t mark = aml_pkg_begin(a);
	aml_name_string(a, path);
	return mark;
}

size_t aml_package_begin(struct aml *a, uint8_t nelems)
{
	aml_u8(a, AML_PACKAGE);
	size_t mark = aml_pkg_begin(a);
	aml_u8(a, nelems);
	return mark;
}

size_t aml_method_begin(struct aml *a, const char *path, uint8_t nargs)
{
	aml_u8(a, AML_METHOD);
	size_t mark = aml_pkg_begin(a);
	aml_name_string(a, path);
	if (nargs > 7)
		a->failed = true;
	aml_u8(a, nargs & 0x7); /* NotSerialized, SyncLevel 0 */
	return mark;
}

void aml_return(struct aml *a)
{
	aml_u8(a, AML_RETURN);
}

size_t aml_if_begin(struct aml *a)
{
	aml_u8(a, AML_IF);
	return aml_pkg_begin(a);
}

void aml_lequal(struct aml *a)
{
	aml_u8(a, AML_LEQUAL);
}

void aml_arg(struct aml *a, unsigned n)
{
	if (n > 6)
		a->failed = true;
	aml_u8(a, (uint8_t)(AML_ARG0 + (n & 0x7)));
}

void aml_notify(struct aml *a, const char *path, uint64_t value)
{
	aml_u8(a, AML_NOTIFY);
	aml_name_string(a, path);
	aml_integer(a, value);
}

size_t aml_resources_begin(struct aml *a, size_t *size_field)
{
	aml_u8(a, AML_BUFFER);
	size_t mark = aml_pkg_begin(a);
	/* BufferSize as a DWord integer, patched at the end */
	aml_u8(a, AML_DWORD);
	*size_field = aml_zeros(a, 4);
	return mark;
}

void aml_resources_end(struct aml *a, size_t mark, size_t size_field)
{
	static const uint8_t end_tag[] = {0x79, 0x00}; /* checksum 0: "treat as valid" */
	aml_bytes(a, end_tag, sizeof(end_tag));
	if (a->failed)
		return;
	uint32_t size = (uint32_t)(a->len - size_field - 4);
	memcpy(a->buf + size_field, &size, 4);
	aml_pkg_end(a, mark);
}

void aml_res_io(struct aml *a, uint16_t base, uint8_t len)
{
	/* I/O port descriptor: 16-bit decode, min = max = base, alignment 1 */
	uint8_t d[8] = {
	    0x47, 0x01, (uint8_t)base, (uint8_t)(base >> 8), (uint8_t)base, (uint8_t)(base >> 8),
	    0x01, len};
	aml_bytes(a, d, sizeof(d));
}

void aml_res_irq_noflags(struct aml *a, unsigned irq)
{
	if (irq > 15) {
		a->failed = true;
		return;
	}
	uint16_t mask = (uint16_t)(1u << irq);
	uint8_t d[3] = {0x22, (uint8_t)mask, (uint8_t)(mask >> 8)};
	aml_bytes(a, d, sizeof(d));
}

void aml_res_mem32_fixed(struct aml *a, uint32_t base, uint32_t len)
{
	uint8_t d[12] = {0x86, 0x09, 0x00, 0x01}; /* read/write */
	memcpy(d + 4, &base, 4);
	memcpy(d + 8, &len, 4);
	aml_bytes(a, d, sizeof(d));
}

void aml_res_ext_irq(struct aml *a, uint32_t gsi, bool level, bool active_low)
{
	/* Extended Interrupt: consumer, exclusive, one interrupt */
	uint8_t flags = (uint8_t)(0x01 | (level ? 0 : 0x02) | (active_low ? 0x04 : 0));
	uint8_t d[9] = {0x89, 0x06, 0x00, flags, 0x01};
	memcpy(d + 5, &gsi, 4);
	aml_bytes(a, d, sizeof(d));
}
