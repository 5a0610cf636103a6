#include "base/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct vs_error oom_error = {.errnum = 12, .msg = (char *)"out of memory"};

static void set(vs_err_t *err, int errnum, char *msg)
{
	if (!msg) {
		*err = &oom_error;
		return;
	}
	struct vs_error *e = malloc(sizeof(*e));
	if (!e) {
		free(msg);
		*err = &oom_error;
		return;
	}
	e->errnum = errnum;
	e->msg = msg;
	*err = e;
}

int vs_verr(vs_err_t *err, int errnum, const char *fmt, va_list ap)
{
	if (!err)
		return -1;
	/* Never drop an earlier error silently: the first cause is the useful one. */
	if (*err)
		return -1;
	char *body = NULL, *msg = NULL;
	if (vasprintf(&body, fmt, ap) < 0)
		body = NULL;
	if (body && errnum)
		if (asprintf(&msg, "%s: %s", body, strerror(errnum)) < 0)
			msg = NULL;
	if (body && !errnum) {
		msg = body;
		body = NULL;
	}
	free(body);
	set(err, errnum, msg);
	return -1;
}

int vs_err(vs_err_t *err, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vs_verr(err, errnum, fmt, ap);
	va_end(ap);
	return -1;
}

int vs_err_wrap(vs_err_t *err, const char *fmt, ...)
{
	if (!err || !*err || *err == &oom_error)
		return -1;
	char *ctx = NULL, *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&ctx, fmt, ap) < 0)
		ctx = NULL;
	va_end(ap);
	if (ctx && asprintf(&msg, "%s: %s", ctx, (*err)->msg) >= 0) {
		free((*err)->msg);
		(*err)->msg = msg;
	}
	free(ctx);
	return -1;
}

void vs_err_free(vs_err_t *err)
{
	if (!err || !*err)
		return;
	if (*err != &oom_error) {
		free((*err)->msg);
		free(*err);
	}
	*err = NULL;
}
