/* PUT /metrics and the FlushMetrics action: one JSON line per flush to metrics_path (a file
 * or a named pipe). vessel's metrics are few: the API's request and fault counts and the
 * instance's state, with the id and properties when asked. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/json.h"
#include "vmm/api/resources.h"

int res_metrics_put(struct api *a, const struct api_request *q, struct api_response *r,
		    vs_err_t *err)
{
	if (api_before_start(a, "PUT /metrics", err) < 0)
		return -1;
	if (a->metrics)
		return vs_err(err, 0, "PUT /metrics: the metrics system is configured already");
	static const char *const keys[] = {"metrics_path", "emit_id", "properties", NULL};
	const char *path = NULL;
	bool emit_id;
	json_t *props = NULL;
	if (vm_json_only(q->body, keys, err) < 0 ||
	    vjson_require(vjson_string(q->body, NULL, "metrics_path", &path, err), NULL,
			  "metrics_path", "a string", err) < 0 ||
	    vjson_bool(q->body, NULL, "emit_id", &emit_id, err) < 0 ||
	    vjson_object(q->body, NULL, "properties", &props, err) < 0)
		return -1;
	const char *key;
	json_t *v;
	json_object_foreach(props, key, v)
	{
		if (!json_is_string(v))
			return vs_err(err, 0, "properties.%.64s: must be a string", key);
	}
	/* non-blocking: a named pipe nobody reads must not stall the VMM's loop */
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0644);
	if (fd < 0)
		return vs_err(err, errno, "metrics_path `%s`", path);
	a->metrics_fd = fd;
	a->metrics = json_incref(q->body);
	api_ok_empty(r);
	return 0;
}

int res_metrics_flush(struct api *a, vs_err_t *err)
{
	if (!a->metrics)
		return vs_err(err, 0, "FlushMetrics: no metrics system (PUT /metrics first)");
	struct timeval tv;
	gettimeofday(&tv, NULL);
	static const char *const states[] = {"Not started", "Running", "Paused"};
	json_t *m = json_pack("{s:I, s:{s:I, s:I}, s:{s:s}}", "utc_timestamp_ms",
			      (json_int_t)tv.tv_sec * 1000 + tv.tv_usec / 1000, "api_server",
			      "requests", (json_int_t)a->requests, "faults", (json_int_t)a->faults,
			      "vmm", "state", states[a->state]);
	if (!m)
		return vs_err(err, ENOMEM, "FlushMetrics");
	if (json_is_true(json_object_get(a->metrics, "emit_id")))
		json_object_set_new(m, "id", json_string(a->id));
	json_t *props = json_object_get(a->metrics, "properties");
	if (props)
		json_object_set(m, "properties", props);
	char *line = json_dumps(m, JSON_COMPACT);
	json_decref(m);
	if (!line)
		return vs_err(err, ENOMEM, "FlushMetrics");
	size_t len = strlen(line);
	line[len] = '\n'; /* over the NUL: one write, one line */
	ssize_t n = write(a->metrics_fd, line, len + 1);
	int e = errno;
	free(line);
	if (n != (ssize_t)len + 1)
		return vs_err(err, n < 0 ? e : EIO, "FlushMetrics: write to metrics_path");
	return 0;
}
