/* PUT /migrate (vessel's own; docs/migration.md): the running VM goes to a `vessel vm
 * migrate-receive` at destination_url, pre-copied while it runs; the call returns as the
 * migration starts, GET /migrate says how it goes and how it ended. */
#include <string.h>

#include "base/json.h"
#include "base/util.h"
#include "vmm/api/resources.h"

#define DOWNTIME_MS_DEFAULT 300
#define TIMEOUT_S_DEFAULT 60

int res_migrate_put(struct api *a, const struct api_request *q, struct api_response *r,
		    vs_err_t *err)
{
	static const char *const keys[] = {"destination_url", "downtime_ms", "timeout_s",
					   "on_timeout", "local", NULL};
	struct api_migrate o = {.downtime_ms = DOWNTIME_MS_DEFAULT, .timeout_s = TIMEOUT_S_DEFAULT};
	const char *on_timeout = NULL;
	int64_t downtime = DOWNTIME_MS_DEFAULT, timeout = TIMEOUT_S_DEFAULT;
	if (vm_json_only(q->body, keys, err) < 0 ||
	    vjson_require(vjson_string(q->body, NULL, "destination_url", &o.url, err), NULL,
			  "destination_url", "a string", err) < 0 ||
	    vjson_int_range(q->body, NULL, "downtime_ms", 1, 600000, &downtime, err) < 0 ||
	    vjson_int_range(q->body, NULL, "timeout_s", 0, 86400, &timeout, err) < 0 ||
	    vjson_string(q->body, NULL, "on_timeout", &on_timeout, err) < 0 ||
	    vjson_bool(q->body, NULL, "local", &o.local, err) < 0)
		return -1;
	if (on_timeout && strcmp(on_timeout, "cancel") != 0 && strcmp(on_timeout, "force") != 0)
		return vs_err(err, 0, "on_timeout: `%.64s`: must be cancel or force", on_timeout);
	if (strncmp(o.url, "unix:", 5) != 0 && strncmp(o.url, "tcp:", 4) != 0)
		return vs_err(
		    err, 0, "destination_url: `%.128s`: must be unix:PATH or tcp:ADDR:PORT", o.url);
	o.downtime_ms = (unsigned)downtime;
	o.timeout_s = (unsigned)timeout;
	o.force = on_timeout && strcmp(on_timeout, "force") == 0;
	if (a->state != API_RUNNING)
		return vs_err(err, 0, "PUT /migrate: the microVM must be running; it is %s",
			      a->state == API_PAUSED ? "paused" : "not started");
	cleanup_free char *config = json_dumps(a->doc, JSON_COMPACT | JSON_SORT_KEYS);
	if (!config)
		return vs_err(err, 0, "PUT /migrate: the description as JSON");
	if (a->ctl.migrate(a->ctl.ctx, &o, config, err) < 0)
		return vs_err_wrap(err, "PUT /migrate");
	api_ok_empty(r);
	return 0;
}

int res_migrate_get(struct api *a, const struct api_request *q, struct api_response *r,
		    vs_err_t *err)
{
	(void)q;
	json_t *st = a->ctl.migrate_status ? a->ctl.migrate_status(a->ctl.ctx) : NULL;
	if (!st)
		st = json_pack("{s:s}", "state", "none");
	return api_ok_json(r, st, err);
}
