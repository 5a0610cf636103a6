#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "base/error.h"
#include "base/json.h"
#include "base/util.h"

Test(error, carries_errno_and_context)
{
	vs_err_t err = NULL;
	cr_assert_eq(vs_err(&err, ENOENT, "open `%s`", "/x"), -1);
	vs_err_wrap(&err, "config.json");
	cr_assert_str_eq(err->msg, "config.json: open `/x`: No such file or directory");
	cr_assert_eq(err->errnum, ENOENT);
	vs_err_free(&err);
	cr_assert_null(err);
}

Test(error, first_cause_is_kept)
{
	vs_err_t err = NULL;
	vs_err(&err, 0, "first");
	vs_err(&err, 0, "second");
	cr_assert_str_eq(err->msg, "first");
	vs_err_free(&err);
}

Test(size, parses_suffixes)
{
	uint64_t v;
	cr_assert_eq(vs_parse_size("512M", &v), 0);
	cr_assert_eq(v, 512ull << 20);
	cr_assert_eq(vs_parse_size("2GiB", &v), 0);
	cr_assert_eq(v, 2ull << 30);
	cr_assert_eq(vs_parse_size("4096", &v), 0);
	cr_assert_eq(v, 4096);
	cr_assert_eq(vs_parse_size("-1", &v), -1);
	cr_assert_eq(vs_parse_size("12Q", &v), -1);
	cr_assert_eq(vs_parse_size("", &v), -1);
	cr_assert_eq(vs_parse_size("99999999999999999999G", &v), -1);
	cr_assert_eq(vs_parse_size("17179869184G", &v), -1);
}

Test(json, strv_names_the_field)
{
	json_t *j = json_loads("{\"args\": [1]}", 0, NULL);
	char **v = NULL;
	vs_err_t err = NULL;
	cr_assert_eq(vjson_strv(j, "process", "args", true, &v, NULL, &err), -1);
	cr_assert_str_eq(err->msg, "process.args: must be a non-empty array of strings");
	vs_err_free(&err);
	json_decref(j);
}

Test(json, absent_and_null_are_unset)
{
	json_t *j = json_loads("{\"a\": null}", 0, NULL);
	const char *s = "keep";
	vs_err_t err = NULL;
	cr_assert_eq(vjson_string(j, "", "a", &s, &err), 0);
	cr_assert_eq(vjson_string(j, "", "b", &s, &err), 0);
	cr_assert_str_eq(s, "keep");
	json_decref(j);
}

Test(json, range_is_enforced)
{
	json_t *j = json_loads("{\"n\": 70000}", 0, NULL);
	int64_t v;
	vs_err_t err = NULL;
	cr_assert_eq(vjson_int_range(j, "x", "n", 0, 65535, &v, &err), -1);
	cr_assert_str_eq(err->msg, "x.n: must be an integer from 0 to 65535");
	vs_err_free(&err);
	json_decref(j);
}
