/* What CNI plugins print: a 1.0.0 result, or an error object. Untrusted input
 * (tests/fuzz/fuzz_cni_result.c). */
#ifndef VESSEL_NETWORK_CNI_RESULT_H
#define VESSEL_NETWORK_CNI_RESULT_H

#include <stddef.h>

#include "base/error.h"
#include "network/network.h"

/* Fills out from a result's first IPv4 (else first) and first IPv6 entries, the MAC of
 * the former's interface and the first nameserver. */
int cni_result_parse(const char *text, size_t len, struct network_attachment *out, vs_err_t *err);
/* Turns a plugin's error output into one line "msg (details) [code N]"; when the
 * text is not an error object, its first line, cut short. */
void cni_error_line(const char *text, size_t len, char *line, size_t size);

#endif
