/* What the harnesses of text parsers share: the fuzzer's bytes as the C string a parser
 * takes (a NUL may come early: the parser then sees a shorter string, as from argv). */
#ifndef VESSEL_TESTS_FUZZ_FUZZ_INPUT_H
#define VESSEL_TESTS_FUZZ_FUZZ_INPUT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A malloc'd copy of data with a NUL after it, or NULL. */
static inline char *fuzz_cstring(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (s) {
		memcpy(s, data, size);
		s[size] = '\0';
	}
	return s;
}

#endif
