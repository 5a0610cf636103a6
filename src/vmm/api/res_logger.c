/* PUT /logger: vessel's log goes also to log_path (a file or a named pipe), with debug lines
 * at level Debug or Trace. Once, before InstanceStart. vessel's lines always show their
 * level; show_level, show_log_origin and module are taken and checked but change nothing. */
#include <string.h>

#include "base/json.h"
#include "base/log.h"
#include "vmm/api/resources.h"

int res_logger_put(struct api *a, const struct api_request *q, struct api_response *r,
		   vs_err_t *err)
{
	if (api_before_start(a, "PUT /logger", err) < 0)
		return -1;
	if (a->logger)
		return vs_err(err, 0, "PUT /logger: the logger is configured already");
	static const char *const keys[] = {"log_path",	      "level",	"show_level",
					   "show_log_origin", "module", NULL};
	const char *path = NULL, *level = NULL, *module = NULL;
	bool b;
	if (vm_json_only(q->body, keys, err) < 0 ||
	    vjson_require(vjson_string(q->body, NULL, "log_path", &path, err), NULL, "log_path",
			  "a string", err) < 0 ||
	    vjson_string(q->body, NULL, "level", &level, err) < 0 ||
	    vjson_string(q->body, NULL, "module", &module, err) < 0 ||
	    vjson_bool(q->body, NULL, "show_level", &b, err) < 0 ||
	    vjson_bool(q->body, NULL, "show_log_origin", &b, err) < 0)
		return -1;
	static const char *const levels[] = {"Error", "Warning", "Info", "Debug", "Trace", "Off"};
	bool known = !level;
	for (size_t i = 0; level && i < sizeof(levels) / sizeof(levels[0]); i++)
		known |= strcmp(level, levels[i]) == 0;
	if (!known)
		return vs_err(err, 0,
			      "level: `%.32s`: must be Error, Warning, Info, Debug, Trace or Off",
			      level);
	bool debug = level && (!strcmp(level, "Debug") || !strcmp(level, "Trace"));
	if (vs_log_open(path, false, debug || vs_log_debug_enabled(), err) < 0)
		return vs_err_wrap(err, "log_path");
	a->logger = json_incref(q->body);
	api_ok_empty(r);
	return 0;
}
