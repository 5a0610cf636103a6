/* A tiny AML encoder: what the DSDT needs (names, scopes, devices, packages,
 * integers, strings, EISA ids, resource templates). It also serves as the byte
 * buffer the ACPI tables are built in. Errors (out of memory, a bad name) are
 * sticky: check aml_failed() once at the end. */
#ifndef VESSEL_VMM_BOOT_AML_H
#define VESSEL_VMM_BOOT_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct aml {
	uint8_t *buf;
	size_t len, cap;
	bool failed;
};

void aml_free(struct aml *a);
static inline bool aml_failed(const struct aml *a)
{
	return a->failed;
}

void aml_bytes(struct aml *a, const void *p, size_t n);
void aml_u8(struct aml *a, uint8_t v);
void aml_u16(struct aml *a, uint16_t v);
void aml_u32(struct aml *a, uint32_t v);
void aml_u64(struct aml *a, uint64_t v);
/* Appends n zero bytes, returning their offset (for fields patched later). */
size_t aml_zeros(struct aml *a, size_t n);

/* PkgLength: aml_pkg_begin reserves room, aml_pkg_end encodes the final length. */
size_t aml_pkg_begin(struct aml *a);
void aml_pkg_end(struct aml *a, size_t mark);
/* The PkgLength encoding of len (content + its own bytes); returns bytes written (0 if too
 * long). Exposed for tests. */
size_t aml_pkglen_encode(size_t content_len, uint8_t out[4]);

/* NameString: "\\_SB_.COM1", "_HID", "COM1"; segments shorter than 4 are padded with '_'. */
void aml_name_string(struct aml *a, const char *path);
void aml_integer(struct aml *a, uint64_t v);
void aml_string(struct aml *a, const char *s);
/* "PNP0501" -> the compressed 32-bit EISA id, as an integer object. */
void aml_eisaid(struct aml *a, const char *id);
uint32_t aml_eisaid_value(const char *id);

/* Name(path, <object follows>) */
void aml_name(struct aml *a, const char *path);
size_t aml_scope_begin(struct aml *a, const char *path);
size_t aml_device_begin(struct aml *a, const char *path);
/* Package(n) { n objects follow } */
size_t aml_package_begin(struct aml *a, uint8_t nelems);
/* Method(path, nargs, NotSerialized) { body follows } */
size_t aml_method_begin(struct aml *a, const char *path, uint8_t nargs);
/* Return(<object follows>) */
void aml_return(struct aml *a);
/* If(<predicate follows>) { body follows }, closed with aml_end */
size_t aml_if_begin(struct aml *a);
/* LEqual(<operand>, <operand>): the two operands follow */
void aml_lequal(struct aml *a);
/* ArgN of the enclosing method (0..6) */
void aml_arg(struct aml *a, unsigned n);
/* Notify(path, value) */
void aml_notify(struct aml *a, const char *path, uint64_t value);
/* Buffer holding a resource template: begin, add descriptors, end (adds the end tag). */
size_t aml_resources_begin(struct aml *a, size_t *size_field);
void aml_resources_end(struct aml *a, size_t mark, size_t size_field);
void aml_res_io(struct aml *a, uint16_t base, uint8_t len);
void aml_res_irq_noflags(struct aml *a, unsigned irq);
void aml_res_mem32_fixed(struct aml *a, uint32_t base, uint32_t len);
void aml_res_ext_irq(struct aml *a, uint32_t gsi, bool level, bool active_low);
/* closes a Scope/Device/Package/Method/If opened above */
static inline void aml_end(struct aml *a, size_t mark)
{
	aml_pkg_end(a, mark);
}

#endif
