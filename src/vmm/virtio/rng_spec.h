/* The entropy device's config: `--rng[=bw=RATE,ops=N,bw_burst=SIZE,ops_burst=N]` and
 * Firecracker's EntropyDevice object (`{"rate_limiter": {...}}`). Pure parsing, no I/O. */
#ifndef VESSEL_VMM_VIRTIO_RNG_SPEC_H
#define VESSEL_VMM_VIRTIO_RNG_SPEC_H

#include <jansson.h>
#include <stdbool.h>

#include "base/error.h"
#include "base/ratelimit.h"

struct rng_spec {
	/* bw: bytes of entropy handed to the guest; ops: requests answered. Zeroed is
	 * unlimited (a bare --rng). */
	struct rate_limiter rl;
};

/* A comma-separated spec of the rate keys only (the empty spec is refused: a bare --rng
 * has no spec at all). Errors name the option. */
int rng_spec_parse(const char *spec, struct rng_spec *out, vs_err_t *err);
/* EntropyDevice: only `rate_limiter` (bandwidth and ops buckets). */
int rng_spec_from_json(json_t *obj, struct rng_spec *out, vs_err_t *err);
/* The word after a bare `--rng` is its spec only if it starts with one of the rate keys
 * (so `--rng DIR` still means a switch and a directory). */
bool rng_spec_looks_like(const char *word);

#endif
