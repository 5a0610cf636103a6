/* Errors that carry their context up to the one place that reports them.
 *
 * A fallible function takes `vs_err_t *err`, returns -1 (or NULL) on failure and
 * fills *err with what failed, on what, and errno. Callers on the way up may
 * prefix context with vs_err_wrap(). Only main() (or a command's top) reports. */
#ifndef VESSEL_BASE_ERROR_H
#define VESSEL_BASE_ERROR_H

#include <stdarg.h>

struct vs_error {
	int errnum; /* 0 for validation errors that have no errno */
	char *msg;  /* full text, strerror(errnum) already appended */
};
typedef struct vs_error *vs_err_t;

/* Sets *err (if err is not NULL) and returns -1. errnum 0 adds no strerror. */
int vs_err(vs_err_t *err, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int vs_verr(vs_err_t *err, int errnum, const char *fmt, va_list ap);

/* Prefixes "context: " to an existing error; returns -1. */
int vs_err_wrap(vs_err_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void vs_err_free(vs_err_t *err);

#define cleanup_err __attribute__((cleanup(vs_err_free)))

#endif
