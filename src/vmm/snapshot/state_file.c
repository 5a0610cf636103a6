/* The state file's bytes: writer and checked reader (see state_file.h for the layout). */
#include "vmm/snapshot/state_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "base/util.h"

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* zlib's crc32 takes a uInt length: feed it in pieces so any size_t is covered. */
static uint32_t crc_of(const uint8_t *p, size_t len)
{
	uLong crc = crc32(0L, Z_NULL, 0);
	while (len > 0) {
		uInt n = len > UINT_MAX ? UINT_MAX : (uInt)len;
		crc = crc32(crc, p, n);
		p += n;
		len -= n;
	}
	return (uint32_t)crc;
}

static int reserve(struct snap_writer *w, size_t more, vs_err_t *err)
{
	if (w->len == 0)
		w->len = SNAP_HEADER_SIZE; /* room for the header, filled by finish */
	if (more > SNAP_FILE_MAX || w->len + more > SNAP_FILE_MAX)
		return vs_err(err, EFBIG, "snapshot state: more than %u bytes", SNAP_FILE_MAX);
	size_t need = w->len + more;
	if (need <= w->cap)
		return 0;
	size_t cap = w->cap ? w->cap : 4096;
	while (cap < need)
		cap *= 2;
	uint8_t *b = realloc(w->buf, cap);
	if (!b)
		return vs_err(err, ENOMEM, "snapshot state: %zu bytes", cap);
	memset(b + w->cap, 0, cap - w->cap);
	w->buf = b;
	w->cap = cap;
	return 0;
}

int snap_writer_add(struct snap_writer *w, const char *name, uint32_t index, const void *data,
		    size_t len, vs_err_t *err)
{
	size_t nlen = strlen(name);
	if (nlen == 0 || nlen >= SNAP_NAME_MAX)
		return vs_err(err, EINVAL, "snapshot section name `%s`: must be 1 to %d bytes",
			      name, SNAP_NAME_MAX - 1);
	if (len > SNAP_FILE_MAX)
		return vs_err(err, EFBIG, "snapshot section %s[%u]: %zu bytes", name, index, len);
	if (reserve(w, SNAP_SECTION_HEADER_SIZE + pad8(len), err) < 0)
		return vs_err_wrap(err, "section %s[%u]", name, index);
	uint8_t *p = w->buf + w->len;
	memset(p, 0, SNAP_SECTION_HEADER_SIZE + pad8(len));
	memcpy(p, name, nlen);
	put_u32(p + 24, index);
	put_u64(p + 32, len);
	if (len)
		memcpy(p + SNAP_SECTION_HEADER_SIZE, data, len);
	w->len += SNAP_SECTION_HEADER_SIZE + pad8(len);
	w->nsections++;
	return 0;
}

int snap_writer_finish(struct snap_writer *w, uint8_t **out, size_t *out_len, vs_err_t *err)
{
	if (reserve(w, 0, err) < 0)
		return -1;
	uint8_t *h = w->buf;
	size_t body = w->len - SNAP_HEADER_SIZE;
	memcpy(h, SNAP_MAGIC, 8);
	put_u32(h + 8, SNAP_FORMAT_VERSION);
	put_u32(h + 12, w->nsections);
	put_u64(h + 16, body);
	put_u32(h + 24, crc_of(h + SNAP_HEADER_SIZE, body));
	put_u32(h + 28, 0);
	*out = w->buf;
	*out_len = w->len;
	w->buf = NULL;
	w->len = w->cap = 0;
	w->nsections = 0;
	return 0;
}

void snap_writer_release(struct snap_writer *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

int snap_writer_write_file(struct snap_writer *w, const char *path, vs_err_t *err)
{
	uint8_t *bytes = NULL;
	size_t len = 0;
	if (snap_writer_finish(w, &bytes, &len, err) < 0)
		return -1;
	char *tmp = NULL;
	int rc = -1, fd = -1;
	if (asprintf(&tmp, "%s.tmp", path) < 0) {
		tmp = NULL;
		vs_err(err, ENOMEM, "state file `%s`", path);
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		vs_err(err, errno, "create state file `%s`", tmp);
		goto out;
	}
	if (vs_write_all(fd, bytes, len, err) < 0) {
		vs_err_wrap(err, "write state file `%s`", tmp);
		goto out;
	}
	if (fsync(fd) < 0) {
		vs_err(err, errno, "fsync state file `%s`", tmp);
		goto out;
	}
	if (rename(tmp, path) < 0) {
		vs_err(err, errno, "rename `%s` to `%s`", tmp, path);
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc < 0 && tmp)
		unlink(tmp);
	free(tmp);
	free(bytes);
	return rc;
}

int snap_parse(const void *buf, size_t len, struct snap_file *out, vs_err_t *err)
{
	const uint8_t *b = buf;
	memset(out, 0, sizeof(*out));
	if (len < 8 || memcmp(b, SNAP_MAGIC, 8) != 0)
		return vs_err(err, 0, "not a vessel snapshot state file (bad magic)");
	if (len < SNAP_HEADER_SIZE)
		return vs_err(err, 0, "state file is truncated: %zu bytes, the header alone is %u",
			      len, SNAP_HEADER_SIZE);
	uint32_t version = get_u32(b + 8);
	if (version != SNAP_FORMAT_VERSION)
		return vs_err(err, 0,
			      "state file has format version %u, this vessel reads version %u "
			      "(take the snapshot again with this vessel)",
			      version, SNAP_FORMAT_VERSION);
	uint32_t count = get_u32(b + 12);
	uint64_t body = get_u64(b + 16);
	size_t have = len - SNAP_HEADER_SIZE;
	if (body > have)
		return vs_err(err, 0,
			      "state file is truncated: the header says %llu bytes of "
			      "sections, the file has %zu",
			      (unsigned long long)body, have);
	if (body < have)
		return vs_err(err, 0, "state file has %zu bytes after its %llu bytes of sections",
			      have - (size_t)body, (unsigned long long)body);
	uint32_t stored = get_u32(b + 24), computed = crc_of(b + SNAP_HEADER_SIZE, have);
	if (stored != computed)
		return vs_err(err, 0, "state file is corrupt: CRC32 %08x, stored %08x", computed,
			      stored);
	if (get_u32(b + 28) != 0)
		return vs_err(err, 0, "state file header: reserved field is not zero");
	/* Each section takes at least its header: a count beyond that is a lie. */
	if (count > have / SNAP_SECTION_HEADER_SIZE)
		return vs_err(err, 0, "state file: %u sections cannot fit in %zu bytes", count,
			      have);

	struct snap_section *secs = calloc(count ? count : 1, sizeof(*secs));
	if (!secs)
		return vs_err(err, ENOMEM, "state file: %u sections", count);
	size_t off = SNAP_HEADER_SIZE;
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *p = b + off;
		if (len - off < SNAP_SECTION_HEADER_SIZE) {
			vs_err(err, 0, "state file: section %u header runs past the end", i);
			goto fail;
		}
		if (memchr(p, 0, SNAP_NAME_MAX) == NULL || p[0] == 0) {
			vs_err(err, 0, "state file: section %u has no valid name", i);
			goto fail;
		}
		size_t nlen = strlen((const char *)p);
		for (size_t k = nlen; k < SNAP_NAME_MAX; k++)
			if (p[k] != 0) {
				vs_err(err, 0, "state file: section %u name is not NUL-padded", i);
				goto fail;
			}
		memcpy(secs[i].name, p, SNAP_NAME_MAX);
		secs[i].index = get_u32(p + 24);
		if (get_u32(p + 28) != 0) {
			vs_err(err, 0, "state file: section %s[%u]: reserved field is not zero",
			       secs[i].name, secs[i].index);
			goto fail;
		}
		uint64_t slen = get_u64(p + 32);
		size_t room = len - off - SNAP_SECTION_HEADER_SIZE;
		if (slen > room || pad8((size_t)slen) > room) {
			vs_err(err, 0, "state file: section %s[%u] says %llu bytes, %zu remain",
			       secs[i].name, secs[i].index, (unsigned long long)slen, room);
			goto fail;
		}
		for (uint32_t j = 0; j < i; j++)
			if (secs[j].index == secs[i].index && !strcmp(secs[j].name, secs[i].name)) {
				vs_err(err, 0, "state file: section %s[%u] appears twice",
				       secs[i].name, secs[i].index);
				goto fail;
			}
		secs[i].data = p + SNAP_SECTION_HEADER_SIZE;
		secs[i].len = (size_t)slen;
		off += SNAP_SECTION_HEADER_SIZE + pad8((size_t)slen);
	}
	if (off != len) {
		vs_err(err, 0, "state file: %zu bytes after the last of its %u sections", len - off,
		       count);
		goto fail;
	}
	out->sections = secs;
	out->nsections = count;
	return 0;
fail:
	free(secs);
	return -1;
}

int snap_read_file(const char *path, struct snap_file *out, vs_err_t *err)
{
	char *bytes = NULL;
	size_t len = 0;
	memset(out, 0, sizeof(*out));
	if (vs_read_file(path, SNAP_FILE_MAX, &bytes, &len, err) < 0)
		return vs_err_wrap(err, "state file `%s`", path);
	if (snap_parse(bytes, len, out, err) < 0) {
		free(bytes);
		return vs_err_wrap(err, "`%s`", path);
	}
	out->owned = (uint8_t *)bytes;
	return 0;
}

void snap_file_release(struct snap_file *f)
{
	free(f->sections);
	free(f->owned);
	memset(f, 0, sizeof(*f));
}

const struct snap_section *snap_find(const struct snap_file *f, const char *name, uint32_t index)
{
	for (uint32_t i = 0; i < f->nsections; i++)
		if (f->sections[i].index == index && !strcmp(f->sections[i].name, name))
			return &f->sections[i];
	return NULL;
}

const void *snap_get_exact(const struct snap_file *f, const char *name, uint32_t index, size_t size,
			   vs_err_t *err)
{
	const struct snap_section *s = snap_find(f, name, index);
	if (!s) {
		vs_err(err, 0, "state file has no section %s[%u]", name, index);
		return NULL;
	}
	if (s->len != size) {
		vs_err(err, 0, "state file section %s[%u] is %zu bytes, this vessel expects %zu",
		       name, index, s->len, size);
		return NULL;
	}
	return s->data;
}
