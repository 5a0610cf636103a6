/* Logging: stderr for the user, plus --log FILE in text or JSON lines.
 * containerd's runc shim reads the last {"level":"error","msg":...} line of the
 * log file to explain a failure, so error lines must keep exactly that shape. */
#ifndef VESSEL_BASE_LOG_H
#define VESSEL_BASE_LOG_H

#include <stdbool.h>
#include "base/error.h"

enum vs_log_level { VS_LOG_DEBUG, VS_LOG_INFO, VS_LOG_WARN, VS_LOG_ERROR };

/* path may be NULL (stderr only). Returns -1 with err when the file cannot be opened. */
int vs_log_open(const char *path, bool json, bool debug, vs_err_t *err);
bool vs_log_debug_enabled(void);

void vs_log(enum vs_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define vs_debug(...) vs_log(VS_LOG_DEBUG, __VA_ARGS__)
#define vs_info(...) vs_log(VS_LOG_INFO, __VA_ARGS__)
#define vs_warn(...) vs_log(VS_LOG_WARN, __VA_ARGS__)

/* The one place errors are reported: "vessel: <msg>" on stderr and an
 * error-level line in the log file. */
void vs_report(vs_err_t err);

#endif
