/* The snapshot state file: a versioned container of named, indexed sections.
 *
 * Layout (little-endian, every section padded to 8 bytes):
 *   header  : magic "VESSNAP\n", u32 format version, u32 section count,
 *             u64 length of what follows the header, u32 CRC32 of what follows, u32 0
 *   section : char name[24] (NUL-padded), u32 index, u32 0, u64 length, data, padding
 *
 * The file is untrusted input (it may come from another host, a disk that filled, a newer
 * vessel): the reader checks every length against the bytes actually present before it
 * trusts it, and the CRC catches what a truncation or bit flip left plausible. Section
 * contents are opaque here; their owners (vCPU, VM, each device) validate them. */
#ifndef VESSEL_VMM_SNAPSHOT_STATE_FILE_H
#define VESSEL_VMM_SNAPSHOT_STATE_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#define SNAP_MAGIC "VESSNAP\n"
/* Bump when any section's layout changes: a vessel reads exactly its own version. */
#define SNAP_FORMAT_VERSION 1u
#define SNAP_NAME_MAX 24 /* including the terminating NUL */
#define SNAP_HEADER_SIZE 32u
#define SNAP_SECTION_HEADER_SIZE 40u
/* A state file holds registers and device blobs, never RAM: anything larger is not ours. */
#define SNAP_FILE_MAX (64u << 20)

struct snap_writer {
	uint8_t *buf;
	size_t len, cap;
	uint32_t nsections;
};

/* Appends one section; name is 1..SNAP_NAME_MAX-1 bytes. */
int snap_writer_add(struct snap_writer *w, const char *name, uint32_t index, const void *data,
		    size_t len, vs_err_t *err);
/* Fills the header (count, length, CRC) and hands the bytes to the caller (free()). */
int snap_writer_finish(struct snap_writer *w, uint8_t **out, size_t *out_len, vs_err_t *err);
void snap_writer_release(struct snap_writer *w);
/* Finishes the writer and writes the file (to PATH.tmp, fsync, rename), so a crash never
 * leaves a half-written state file under the name the user gave. */
int snap_writer_write_file(struct snap_writer *w, const char *path, vs_err_t *err);

struct snap_section {
	char name[SNAP_NAME_MAX];
	uint32_t index;
	const uint8_t *data; /* points into the parsed buffer */
	size_t len;
};

struct snap_file {
	uint8_t *owned; /* set by snap_read_file; snap_parse borrows the caller's bytes */
	struct snap_section *sections;
	uint32_t nsections;
};

/* Checks magic, format version, lengths, CRC and every section header. */
int snap_parse(const void *buf, size_t len, struct snap_file *out, vs_err_t *err);
int snap_read_file(const char *path, struct snap_file *out, vs_err_t *err);
void snap_file_release(struct snap_file *f);

const struct snap_section *snap_find(const struct snap_file *f, const char *name, uint32_t index);
/* The section's bytes, which must be exactly `size` long (fixed-layout structs). */
const void *snap_get_exact(const struct snap_file *f, const char *name, uint32_t index, size_t size,
			   vs_err_t *err);

#endif
