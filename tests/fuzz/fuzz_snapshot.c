/* A snapshot state file may come from another host, a full disk or a hand: any bytes
 * must give sections that lie inside the input or a clear error, never a crash, leak
 * or out-of-bounds read. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/error.h"
#include "vmm/snapshot/state_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snap_file f;
	vs_err_t err = NULL;
	if (snap_parse(data, size, &f, &err) == 0) {
		volatile uint8_t sink = 0;
		for (uint32_t i = 0; i < f.nsections; i++) {
			const struct snap_section *s = &f.sections[i];
			if (s->data < data || s->data + s->len > data + size)
				__builtin_trap();
			for (size_t k = 0; k < s->len; k++)
				sink ^= s->data[k];
			if (snap_find(&f, s->name, s->index) != s)
				__builtin_trap();
		}
		(void)sink;
		snap_file_release(&f);
	}
	vs_err_free(&err);
	return 0;
}
