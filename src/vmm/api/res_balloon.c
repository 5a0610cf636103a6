/* /balloon and /balloon/statistics, Firecracker's bodies. PUT is the device table's
 * (before boot) once the amount is checked against the machine's memory; PATCH changes
 * the description before boot and, after it, asks the controller to tell the device. */
#include <errno.h>

#include "base/json.h"
#include "vmm/api/resources.h"

static json_t *configured(const struct api *a, vs_err_t *err)
{
	json_t *b = json_object_get(a->doc, "balloon");
	if (!b)
		vs_err(err, 0, "no balloon device is configured (PUT /balloon before boot)");
	return b;
}

static int check_amount(const struct api *a, int64_t amount, vs_err_t *err)
{
	json_t *mc = api_machine_config(a);
	int64_t mib = json_integer_value(json_object_get(mc, "mem_size_mib"));
	json_decref(mc);
	if (amount > mib)
		return vs_err(err, 0, "amount_mib %lld: more than the guest's %lld MiB of memory",
			      (long long)amount, (long long)mib);
	return 0;
}

/* The balloon object with one member changed, kept if the description still holds. */
static int set_member(struct api *a, const char *key, int64_t v, vs_err_t *err)
{
	json_t *next = json_deep_copy(a->doc);
	if (!next)
		return vs_err(err, ENOMEM, "balloon");
	json_object_set_new(json_object_get(next, "balloon"), key, json_integer(v));
	return api_commit(a, next, err);
}

static int ask(struct api *a, int what, uint32_t value, json_t **out, vs_err_t *err)
{
	struct api_balloon_op op = {.what = what, .value = value};
	if (!a->ctl.balloon)
		return vs_err(err, 0, "this controller has no balloon");
	return a->ctl.balloon(a->ctl.ctx, &op, out, err);
}

int res_balloon_put(struct api *a, const struct api_request *q, struct api_response *r,
		    vs_err_t *err)
{
	int64_t amount = 0;
	if (api_before_start(a, "PUT /balloon", err) < 0)
		return -1;
	if (vjson_int64(q->body, NULL, "amount_mib", &amount, err) < 0)
		return -1;
	if (check_amount(a, amount, err) < 0)
		return -1;
	struct api_request dq = *q;
	dq.kind = device_kind_by_name("balloon");
	return res_device_put(a, &dq, r, err);
}

int res_balloon_get(struct api *a, const struct api_request *q, struct api_response *r,
		    vs_err_t *err)
{
	(void)q;
	json_t *b = configured(a, err);
	if (!b)
		return -1;
	json_t *v = json_pack("{s:i, s:b, s:i}", "amount_mib", 0, "deflate_on_oom", 0,
			      "stats_polling_interval_s", 0);
	if (v)
		json_object_update(v, b);
	return api_ok_json(r, v, err);
}

int res_balloon_patch(struct api *a, const struct api_request *q, struct api_response *r,
		      vs_err_t *err)
{
	static const char *const keys[] = {"amount_mib", NULL};
	int64_t amount = 0;
	if (vm_json_only(q->body, keys, err) < 0 ||
	    vjson_require(
		vjson_int_range(q->body, NULL, "amount_mib", 0, UINT32_MAX >> 8, &amount, err),
		NULL, "amount_mib", "an integer", err) < 0)
		return -1;
	if (!configured(a, err) || check_amount(a, amount, err) < 0)
		return -1;
	if (a->state != API_NOT_STARTED &&
	    ask(a, API_BALLOON_TARGET, (uint32_t)amount, NULL, err) < 0)
		return vs_err_wrap(err, "PATCH /balloon");
	if (set_member(a, "amount_mib", amount, err) < 0)
		return -1;
	api_ok_empty(r);
	return 0;
}

int res_balloon_stats_get(struct api *a, const struct api_request *q, struct api_response *r,
			  vs_err_t *err)
{
	(void)q;
	json_t *stats = NULL;
	if (!configured(a, err) || api_after_start(a, "GET /balloon/statistics", err) < 0 ||
	    ask(a, API_BALLOON_STATS, 0, &stats, err) < 0)
		return -1;
	return api_ok_json(r, stats, err);
}

int res_balloon_stats_patch(struct api *a, const struct api_request *q, struct api_response *r,
			    vs_err_t *err)
{
	static const char *const keys[] = {"stats_polling_interval_s", NULL};
	int64_t s = 0;
	if (vm_json_only(q->body, keys, err) < 0 ||
	    vjson_require(
		vjson_int_range(q->body, NULL, "stats_polling_interval_s", 0, 86400, &s, err), NULL,
		"stats_polling_interval_s", "an integer", err) < 0)
		return -1;
	if (!configured(a, err))
		return -1;
	if (a->state != API_NOT_STARTED &&
	    ask(a, API_BALLOON_STATS_INTERVAL, (uint32_t)s, NULL, err) < 0)
		return vs_err_wrap(err, "PATCH /balloon/statistics");
	if (set_member(a, "stats_polling_interval_s", s, err) < 0)
		return -1;
	api_ok_empty(r);
	return 0;
}
