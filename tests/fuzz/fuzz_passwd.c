/* Arbitrary bytes as a container's /etc/passwd, which the image author controls. Found:
 * crashes, reads past the text, UB; and an answer that is not a clean C string that fits
 * (checked below). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "oci/passwd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t uids[] = {0, 1, 1000, 65534, UINT32_MAX};
	for (size_t i = 0; i < sizeof(uids) / sizeof(uids[0]); i++) {
		char home[16];
		memset(home, 'X', sizeof(home));
		if (passwd_home((const char *)data, size, uids[i], home, sizeof(home)) == 1) {
			size_t n = strnlen(home, sizeof(home));
			if (n == 0 || n == sizeof(home) || memchr(home, '\n', n) ||
			    memchr(home, ':', n))
				__builtin_trap();
		}
	}
	return 0;
}
