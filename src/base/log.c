#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

static int log_fd = -1;
static bool log_json;
static bool log_debug;

int vs_log_open(const char *path, bool json, bool debug, vs_err_t *err)
{
	log_json = json;
	log_debug = debug;
	if (!path)
		return 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return vs_err(err, errno, "open log file `%s`", path);
	log_fd = fd;
	return 0;
}

bool vs_log_debug_enabled(void)
{
	return log_debug;
}

static const char *level_name(enum vs_log_level l)
{
	switch (l) {
	case VS_LOG_DEBUG:
		return "debug";
	case VS_LOG_INFO:
		return "info";
	case VS_LOG_WARN:
		return "warning";
	default:
		return "error";
	}
}

static void write_file_line(enum vs_log_level level, const char *msg)
{
	char stamp[64];
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	size_t n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + n, sizeof(stamp) - n, ".%06ldZ", (long)tv.tv_usec);

	char *line = NULL;
	if (log_json) {
		json_t *o = json_pack("{s:s, s:s, s:s}", "level", level_name(level), "msg", msg,
				      "time", stamp);
		char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		if (s && asprintf(&line, "%s\n", s) < 0)
			line = NULL;
		free(s);
	} else if (asprintf(&line, "%s %s: %s\n", stamp, level_name(level), msg) < 0) {
		line = NULL;
	}
	if (line) {
		/* one write per line: several vessel processes may share the file */
		ssize_t r = write(log_fd, line, strlen(line));
		(void)r;
		free(line);
	}
}

static void vlog(enum vs_log_level level, const char *fmt, va_list ap)
{
	if (level == VS_LOG_DEBUG && !log_debug)
		return;
	char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		return;
	if (log_fd >= 0)
		write_file_line(level, msg);
	/* With a log file, only errors also reach stderr (runc does the same). */
	if (log_fd < 0 || level == VS_LOG_ERROR)
		fprintf(stderr, "vessel: %s%s\n", level == VS_LOG_WARN ? "warning: " : "", msg);
	free(msg);
}

void vs_log(enum vs_log_level level, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
	errno = saved;
}

void vs_report(vs_err_t err)
{
	vs_log(VS_LOG_ERROR, "%s", err ? err->msg : "unknown error");
}
