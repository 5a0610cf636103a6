#include "base/json.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

char *vjson_join(const char *path, const char *key)
{
	char *s = NULL;
	if (!path || !*path)
		return strdup(key);
	if (asprintf(&s, "%s.%s", path, key) < 0)
		return NULL;
	return s;
}

char *vjson_index(const char *path, size_t i)
{
	char *s = NULL;
	if (asprintf(&s, "%s[%zu]", path ? path : "", i) < 0)
		return NULL;
	return s;
}

static int bad(vs_err_t *err, const char *path, const char *key, const char *what)
{
	if (path && *path)
		return vs_err(err, 0, "%s.%s: %s", path, key, what);
	return vs_err(err, 0, "%s: %s", key, what);
}

json_t *vjson_load_buffer(const char *text, size_t len, const char *what, vs_err_t *err)
{
	json_error_t jerr;
	json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		vs_err(err, 0, "%s: invalid JSON at line %d column %d: %s", what, jerr.line,
		       jerr.column, jerr.text);
		return NULL;
	}
	return j;
}

json_t *vjson_load_file(const char *path, size_t max_bytes, vs_err_t *err)
{
	cleanup_free char *text = NULL;
	size_t len = 0;
	if (vs_read_file(path, max_bytes, &text, &len, err) < 0)
		return NULL;
	return vjson_load_buffer(text, len, path, err);
}

static json_t *get(json_t *obj, const char *key)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
	/* JSON null means "not set", as in Go's encoding/json which runc uses */
	return json_is_null(v) ? NULL : v;
}

int vjson_object(json_t *obj, const char *path, const char *key, json_t **out, vs_err_t *err)
{
	json_t *v = get(obj, key);
	if (!v)
		return 0;
	if (!json_is_object(v))
		return bad(err, path, key, "must be an object");
	*out = v;
	return 1;
}

int vjson_array(json_t *obj, const char *path, const char *key, json_t **out, vs_err_t *err)
{
	json_t *v = get(obj, key);
	if (!v)
		return 0;
	if (!json_is_array(v))
		return bad(err, path, key, "must be an array");
	*out = v;
	return 1;
}

int vjson_string(json_t *obj, const char *path, const char *key, const char **out,
		 vs_err_t *err)
{
	json_t *v = get(obj, key);
	if (!v)
		return 0;
	if (!json_is_string(v))
		return bad(err, path, key, "must be a string");
	if (strlen(json_string_value(v)) != json_string_length(v))
		return bad(err, path, key, "must not contain NUL bytes");
	*out = json_string_value(v);
	return 1;
}

int vjson_bool(json_t *obj, const char *path, const char *key, bool *out, vs_err_t *err)
{
	json_t *v = get(obj, key);
	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return bad(err, path, key, "must be a boolean");
	*out = json_is_true(v);
	return 1;
}

int vjson_int64(json_t *obj, const char *path, const char *key, int64_t *out, vs_err_t *err)
{
	json_t *v = get(obj, key);
	if (!v)
		return 0;
	if (!json_is_integer(v))
		return bad(err, path, key, "must be an integer");
	*out = json_integer_value(v);
	return 1;
}

int vjson_int_range(json_t *obj, const char *path, const char *key, int64_t min, int64_t max,
		    int64_t *out, vs_err_t *err)
{
	int64_t v;
	int rc = vjson_int64(obj, path, key, &v, err);
	if (rc <= 0)
		return rc;
	if (v < min || v > max) {
		char what[96];
		snprintf(what, sizeof(what), "must be an integer from %lld to %lld", (long long)min,
			 (long long)max);
		return bad(err, path, key, what);
	}
	*out = v;
	return 1;
}

int vjson_uint64(json_t *obj, const char *path, const char *key, uint64_t *out, vs_err_t *err)
{
	json_t *v = get(obj, key);
	if (!v)
		return 0;
	/* jansson keeps integers as json_int_t (long long); a value past INT64_MAX fails
	 * to parse as integer and arrives as a real, which is refused here. */
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return bad(err, path, key, "must be a non-negative integer");
	*out = (uint64_t)json_integer_value(v);
	return 1;
}

int vjson_uint32(json_t *obj, const char *path, const char *key, uint32_t *out, vs_err_t *err)
{
	int64_t v;
	int rc = vjson_int_range(obj, path, key, 0, UINT32_MAX, &v, err);
	if (rc > 0)
		*out = (uint32_t)v;
	return rc;
}

void vjson_strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

int vjson_strv(json_t *obj, const char *path, const char *key, bool nonempty, char ***out,
	       size_t *n, vs_err_t *err)
{
	const char *what = nonempty ? "must be a non-empty array of strings"
				    : "must be an array of strings";
	json_t *v = get(obj, key);
	if (!v)
		return 0;
	if (!json_is_array(v) || (nonempty && json_array_size(v) == 0))
		return bad(err, path, key, what);
	size_t count = json_array_size(v);
	char **vec = calloc(count + 1, sizeof(char *));
	if (!vec)
		return vs_err(err, ENOMEM, "%s", key);
	for (size_t i = 0; i < count; i++) {
		json_t *s = json_array_get(v, i);
		if (!json_is_string(s) || strlen(json_string_value(s)) != json_string_length(s)) {
			vjson_strv_free(vec);
			return bad(err, path, key, what);
		}
		vec[i] = strdup(json_string_value(s));
		if (!vec[i]) {
			vjson_strv_free(vec);
			return vs_err(err, ENOMEM, "%s", key);
		}
	}
	*out = vec;
	if (n)
		*n = count;
	return 1;
}

int vjson_require(int rc, const char *path, const char *key, const char *what, vs_err_t *err)
{
	if (rc < 0)
		return -1;
	if (rc == 0) {
		char msg[128];
		snprintf(msg, sizeof(msg), "is required (%s)", what);
		return bad(err, path, key, msg);
	}
	return rc;
}
