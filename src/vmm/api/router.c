/* The router: a table of (method, path pattern) -> handler. The device resources come from
 * the table of device kinds (a kind with an api_path gets PUT, and PATCH when the path has
 * an id), so a new device kind is reachable through the API with no row here. */
#include <ctype.h>
#include <string.h>

#include "vmm/api/resources.h"

static const struct api_route routes[] = {
    {"GET", "/", res_instance_get, false, NULL},
    {"GET", "/version", res_version_get, false, NULL},
    {"GET", "/vm/config", res_vm_config_get, false, NULL},
    {"PUT", "/boot-source", res_boot_source_put, true, NULL},
    {"GET", "/machine-config", res_machine_config_get, false, NULL},
    {"PUT", "/machine-config", res_machine_config_put, true, NULL},
    {"PATCH", "/machine-config", res_machine_config_patch, true, NULL},
    {"PUT", "/actions", res_actions_put, true, NULL},
    {"PATCH", "/vm", res_vm_patch, true, NULL},
    {"PUT", "/logger", res_logger_put, true, NULL},
    {"PUT", "/metrics", res_metrics_put, true, NULL},
    {"PUT", "/snapshot/create", res_snapshot_create, true, NULL},
    {"PUT", "/snapshot/load", res_snapshot_load, true, NULL},
    {"PUT", "/migrate", res_migrate_put, true, NULL},
    {"GET", "/migrate", res_migrate_get, false, NULL},
    {"PUT", "/balloon", res_balloon_put, true, NULL},
    {"GET", "/balloon", res_balloon_get, false, NULL},
    {"PATCH", "/balloon", res_balloon_patch, true, NULL},
    {"GET", "/balloon/statistics", res_balloon_stats_get, false, NULL},
    {"PATCH", "/balloon/statistics", res_balloon_stats_patch, true, NULL},
};

/* Whether path matches pattern; a {name} segment takes one non-empty segment into id. */
static bool match(const char *pattern, const char *path, char *id, size_t idsz, bool *bad_id)
{
	const char *p = pattern, *s = path;
	while (*p && *s) {
		if (*p == '{') {
			const char *close = strchr(p, '}');
			size_t n = strcspn(s, "/");
			if (!close || n == 0)
				return false;
			if (n >= idsz) {
				*bad_id = true;
				n = idsz - 1;
			}
			memcpy(id, s, n);
			id[n] = '\0';
			for (size_t i = 0; i < n; i++)
				if (!isalnum((unsigned char)id[i]) && id[i] != '_')
					*bad_id = true;
			p = close + 1;
			s += strcspn(s, "/");
			continue;
		}
		if (*p != *s)
			return false;
		p++;
		s++;
	}
	return !*p && !*s;
}

static bool has_id(const char *pattern)
{
	return strchr(pattern, '{') != NULL;
}

int api_route(const char *method, const char *path, const struct api_route **route,
	      struct api_request *q, vs_err_t *err)
{
	/* the device rows, made from the kinds' table once */
	static struct api_route dev[2 * 16];
	static size_t ndev;
	static bool made;
	if (!made) {
		for (size_t i = 0; i < device_nkinds && ndev + 2 <= sizeof(dev) / sizeof(dev[0]);
		     i++) {
			const struct device_kind *k = device_kinds[i];
			if (!k->api_path)
				continue;
			dev[ndev++] =
			    (struct api_route){"PUT", k->api_path, res_device_put, true, k};
			if (has_id(k->api_path))
				dev[ndev++] = (struct api_route){"PATCH", k->api_path,
								 res_device_patch, true, k};
		}
		made = true;
	}
	bool path_known = false;
	for (size_t t = 0; t < 2; t++) {
		const struct api_route *rows = t ? dev : routes;
		size_t n = t ? ndev : sizeof(routes) / sizeof(routes[0]);
		for (size_t i = 0; i < n; i++) {
			bool bad_id = false;
			char id[sizeof(q->id)] = "";
			if (!match(rows[i].pattern, path, id, sizeof(id), &bad_id))
				continue;
			path_known = true;
			if (strcmp(rows[i].method, method) != 0)
				continue;
			if (bad_id)
				return vs_err(err, 0,
					      "%s: the id in the path must be 1 to 64 letters, "
					      "digits or `_`",
					      rows[i].pattern);
			memcpy(q->id, id, sizeof(q->id));
			q->kind = rows[i].kind;
			*route = &rows[i];
			return 0;
		}
	}
	/* Firecracker's words; the path is quoted only when it is one printable line */
	bool printable = strlen(path) <= 128;
	for (const char *c = path; *c && printable; c++)
		printable = isprint((unsigned char)*c);
	if (path_known)
		return vs_err(err, 0, "Invalid request method and/or path: %s %s (not with %s)",
			      printable ? method : "?", printable ? path : "(path)",
			      printable ? method : "this method");
	return vs_err(err, 0, "Invalid request method and/or path: %s %s", printable ? method : "?",
		      printable ? path : "(unprintable path)");
}
