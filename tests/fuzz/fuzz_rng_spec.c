/* The --rng spec (user input: the rate keys only). Checks, besides crashes, UB and leaks:
 * an accepted spec is not empty, its bursts have their rates (what rl_check asks) and the
 * command line would take it as the word after --rng;
 * a refused one says why on one line. A bare --rng has no spec, so "" must be refused. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_input.h"
#include "vmm/virtio/rng_spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *spec = fuzz_cstring(data, size);
	if (!spec)
		return 0;
	struct rng_spec s;
	vs_err_t err = NULL;
	if (rng_spec_parse(spec, &s, &err) == 0) {
		if (!*spec) /* a burst of 0 alone limits nothing, but is no error either */
			__builtin_trap();
		if ((tb_unlimited(&s.rl.bw) && s.rl.bw.one_time_burst) ||
		    (tb_unlimited(&s.rl.ops) && s.rl.ops.one_time_burst))
			__builtin_trap();
		if (!rng_spec_looks_like(spec))
			__builtin_trap(); /* a spec the CLI would not take as the next word */
	} else if (!err || !err->msg || strchr(err->msg, '\n')) {
		__builtin_trap();
	}
	vs_err_free(&err);
	free(spec);
	return 0;
}
