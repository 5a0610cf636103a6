/* What a CNI plugin prints is untrusted: the result parser and the error-line maker. */
#include <stddef.h>
#include <stdint.h>

#include "network/cni_result.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct network_attachment a;
	vs_err_t err = NULL;
	cni_result_parse((const char *)data, size, &a, &err);
	vs_err_free(&err);
	char line[512];
	cni_error_line((const char *)data, size, line, sizeof(line));
	return 0;
}
