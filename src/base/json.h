/* Validated access to untrusted JSON (config.json, process.json, API bodies).
 *
 * Every getter names the field it checks by its dotted path, so an error reads
 * `process.args: must be a non-empty array of strings`. Getters return 0 when the
 * key is absent (leaving *out untouched), 1 when present and valid, -1 with err. */
#ifndef VESSEL_BASE_JSON_H
#define VESSEL_BASE_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "base/error.h"

/* Parses a whole file; errors carry line and column. */
json_t *vjson_load_file(const char *path, size_t max_bytes, vs_err_t *err);
/* The same for bytes already read; what names them in errors. */
json_t *vjson_load_buffer(const char *text, size_t len, const char *what, vs_err_t *err);

int vjson_object(json_t *obj, const char *path, const char *key, json_t **out, vs_err_t *err);
int vjson_array(json_t *obj, const char *path, const char *key, json_t **out, vs_err_t *err);
int vjson_string(json_t *obj, const char *path, const char *key, const char **out,
		 vs_err_t *err);
int vjson_bool(json_t *obj, const char *path, const char *key, bool *out, vs_err_t *err);
int vjson_int64(json_t *obj, const char *path, const char *key, int64_t *out, vs_err_t *err);
/* Integer in [min, max]. */
int vjson_int_range(json_t *obj, const char *path, const char *key, int64_t min, int64_t max,
		    int64_t *out, vs_err_t *err);
int vjson_uint64(json_t *obj, const char *path, const char *key, uint64_t *out, vs_err_t *err);
int vjson_uint32(json_t *obj, const char *path, const char *key, uint32_t *out, vs_err_t *err);

/* Array of strings, copied into a NULL-terminated vector (free with vjson_strv_free). */
int vjson_strv(json_t *obj, const char *path, const char *key, bool nonempty, char ***out,
	       size_t *n, vs_err_t *err);
void vjson_strv_free(char **v);

/* Fails on a required key that is absent: "<path>.<key>: is required". */
int vjson_require(int rc, const char *path, const char *key, const char *what, vs_err_t *err);

/* Builds "path.key" / "path[i]" names for nested errors; returns a static-per-thread buffer
 * copy the caller owns (free). */
char *vjson_join(const char *path, const char *key);
char *vjson_index(const char *path, size_t i);

#endif
