/* Arbitrary bytes as an image's /etc/passwd or /etc/group, which the image's author
 * controls, searched for a few names. Found: crashes, reads past the text, UB; and a
 * found entry whose line does not start with the name and a ':' (checked below). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *names[] = {"root", "appuser", "a", "nobody"};
	const char *text = (const char *)data;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		uint32_t id = 0, gid = 0;
		if (engine_userdb_find(text, size, names[i], &id, &gid) == 1 ||
		    engine_userdb_find(text, size, names[i], &id, NULL) == 1) {
			/* some line starts with "NAME:" */
			size_t n = strlen(names[i]);
			int seen = 0;
			for (size_t p = 0; p + n < size && !seen; p++)
				if ((p == 0 || text[p - 1] == '\n') &&
				    memcmp(text + p, names[i], n) == 0 && text[p + n] == ':')
					seen = 1;
			if (!seen)
				__builtin_trap();
		}
	}
	return 0;
}
