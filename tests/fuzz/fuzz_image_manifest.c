/* Arbitrary bytes as the JSON documents of an image (the first byte picks which: OCI
 * index, manifest, image config, docker-archive manifest.json). Found: crashes, UB,
 * leaks; and a parsed value that breaks what the loader trusts (checked below). */
#include <stdint.h>

#include "image/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *json = (const char *)data + 1;
	size_t len = size - 1;
	vs_err_t err = NULL;
	switch (data[0] % 4) {
	case 0: {
		struct index x;
		if (index_parse(json, len, "fuzz", &x, &err) == 0) {
			for (size_t i = 0; i < x.n; i++)
				if (!digest_valid(x.manifests[i].digest) || x.manifests[i].size < 0)
					__builtin_trap();
			index_free(&x);
		}
		break;
	}
	case 1: {
		struct manifest m;
		if (manifest_parse(json, len, "fuzz", &m, &err) == 0) {
			if (!digest_valid(m.config.digest))
				__builtin_trap();
			for (size_t i = 0; i < m.n_layers; i++)
				if (!digest_valid(m.layers[i].digest) ||
				    media_kind_of(m.layers[i].media_type) != MEDIA_LAYER)
					__builtin_trap();
			manifest_free(&m);
		}
		break;
	}
	case 2: {
		struct image_config c;
		if (image_config_parse(json, len, "fuzz", &c, &err) == 0) {
			for (size_t i = 0; i < c.n; i++)
				if (!digest_valid(c.diff_ids[i]))
					__builtin_trap();
			image_config_free(&c);
		}
		break;
	}
	case 3: {
		struct docker_manifest d;
		if (docker_manifest_parse(json, len, "fuzz", &d, &err) == 0) {
			for (size_t i = 0; i < d.n; i++) {
				if (!archive_path_safe(d.images[i].config))
					__builtin_trap();
				for (size_t k = 0; k < d.images[i].n_layers; k++)
					if (!archive_path_safe(d.images[i].layers[k]))
						__builtin_trap();
			}
			docker_manifest_free(&d);
		}
		break;
	}
	}
	vs_err_free(&err);
	return 0;
}
