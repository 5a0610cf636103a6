#include "oci/passwd.h"

#include <stdbool.h>
#include <string.h>

/* name:password:uid:gid:gecos:home:shell */
enum { FIELD_UID = 2, FIELD_HOME = 5, FIELDS_NEEDED = 6 };

static bool parse_uid(const char *s, size_t n, uint32_t *out)
{
	uint64_t v = 0;
	if (n == 0 || n > 10)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

static int line_home(const char *line, size_t n, uint32_t uid, char *home, size_t size)
{
	const char *field[FIELDS_NEEDED + 1];
	size_t len[FIELDS_NEEDED + 1];
	size_t nf = 0;
	const char *p = line, *end = line + n;
	while (nf <= FIELDS_NEEDED) {
		const char *colon = memchr(p, ':', (size_t)(end - p));
		const char *stop = colon ? colon : end;
		field[nf] = p;
		len[nf] = (size_t)(stop - p);
		nf++;
		if (!colon)
			break;
		p = colon + 1;
	}
	uint32_t got;
	if (nf < FIELDS_NEEDED || !parse_uid(field[FIELD_UID], len[FIELD_UID], &got) || got != uid)
		return 0;
	if (len[FIELD_HOME] == 0 || len[FIELD_HOME] >= size ||
	    memchr(field[FIELD_HOME], '\0', len[FIELD_HOME]))
		return 0;
	memcpy(home, field[FIELD_HOME], len[FIELD_HOME]);
	home[len[FIELD_HOME]] = '\0';
	return 1;
}

int passwd_home(const char *text, size_t len, uint32_t uid, char *home, size_t size)
{
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *stop = nl ? nl : end;
		if (line_home(p, (size_t)(stop - p), uid, home, size))
			return 1;
		p = nl ? nl + 1 : end;
	}
	return 0;
}
