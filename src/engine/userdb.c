/* A user or group name in an image's /etc/passwd or /etc/group, which the image's author
 * wrote: pure text in, an id out, so it is unit-tested and fuzzed apart from any file. */
#include <stdint.h>
#include <string.h>

#include "engine/internal.h"

/* A decimal id that fits in 32 bits, digits only (no sign, no blank), as glibc's files
 * module accepts. */
static int parse_id(const char *s, size_t n, uint32_t *out)
{
	if (n == 0 || n > 10)
		return -1;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* Splits line (n bytes, no newline) at ':' into up to max fields; returns their number. */
static size_t fields(const char *line, size_t n, const char **f, size_t *flen, size_t max)
{
	size_t k = 0, start = 0;
	for (size_t i = 0; i <= n && k < max; i++) {
		if (i == n || line[i] == ':') {
			f[k] = line + start;
			flen[k++] = i - start;
			start = i + 1;
		}
	}
	return k;
}

int engine_userdb_find(const char *text, size_t len, const char *name, uint32_t *id, uint32_t *gid)
{
	size_t nlen = strlen(name);
	if (nlen == 0)
		return 0;
	for (size_t pos = 0; pos < len;) {
		const char *line = text + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - line) : len - pos;
		pos += n + 1;
		const char *f[4];
		size_t fl[4];
		size_t k = fields(line, n, f, fl, 4);
		if (k < (gid ? 4u : 3u) || fl[0] != nlen || memcmp(f[0], name, nlen) != 0)
			continue;
		uint32_t u, g = 0;
		if (parse_id(f[2], fl[2], &u) < 0 || (gid && parse_id(f[3], fl[3], &g) < 0))
			continue;
		*id = u;
		if (gid)
			*gid = g;
		return 1;
	}
	return 0;
}
