#include "vmm/virtio/rng_spec.h"

#include <string.h>

#include "vmm/config.h"

#define RNG_KEYS "bw=, ops=, bw_burst=, ops_burst="

int rng_spec_parse(const char *spec, struct rng_spec *out, vs_err_t *err)
{
	*out = (struct rng_spec){0};
	rl_init(&out->rl);
	struct vm_spec_opt o;
	const char *pos = spec;
	int more;
	unsigned n = 0;
	while ((more = vm_spec_next(spec, &pos, &o, err)) > 0) {
		n++;
		if (!o.val)
			return vs_err(err, 0, "`%.*s`: expected KEY=VALUE (" RNG_KEYS ")",
				      (int)o.len, o.text);
		int r = rl_parse_ops_option(&out->rl, o.key, o.klen, o.val, o.vlen, err);
		if (r < 0)
			return -1;
		if (r == 0)
			return vs_err(err, 0, "%.*s: unknown option (" RNG_KEYS ")", (int)o.klen,
				      o.key);
	}
	if (more < 0)
		return -1;
	if (n == 0)
		return vs_err(err, 0, "empty spec (" RNG_KEYS ", or a bare --rng)");
	return rl_check_ops(&out->rl, err);
}

int rng_spec_from_json(json_t *obj, struct rng_spec *out, vs_err_t *err)
{
	static const char *const keys[] = {"rate_limiter", NULL};
	*out = (struct rng_spec){0};
	rl_init(&out->rl);
	if (vm_json_only(obj, keys, err) < 0 ||
	    vm_json_rate_limiter(obj, "rate_limiter", &out->rl, err) < 0)
		return -1;
	return 0;
}

bool rng_spec_looks_like(const char *word)
{
	static const char *const keys[] = {"bw=", "ops=", "bw_burst=", "ops_burst="};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strncmp(word, keys[i], strlen(keys[i])))
			return true;
	return false;
}
