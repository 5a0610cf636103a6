#include "network/plugin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/run.h"
#include "network/cni_result.h"

#define MAX_OUTPUT (1 << 20)

int cni_plugin_run(const char *type, const struct cni_call *c, const char *config, char **out,
		   size_t *out_len, vs_err_t *err)
{
	char path[4096];
	if (strchr(type, '/') || !*type)
		return vs_err(err, 0, "plugin `%s`: not a plugin name", type);
	snprintf(path, sizeof(path), "%s/%s", CNI_PLUGIN_DIR, type);
	if (access(path, X_OK) < 0)
		return vs_err(err, errno, "plugin %s: %s", type, path);
	char e[6][4096];
	snprintf(e[0], sizeof(e[0]), "CNI_COMMAND=%s", c->command);
	snprintf(e[1], sizeof(e[1]), "CNI_CONTAINERID=%s", c->container_id);
	snprintf(e[2], sizeof(e[2]), "CNI_NETNS=%s", c->netns ? c->netns : "");
	snprintf(e[3], sizeof(e[3]), "CNI_IFNAME=%s", c->ifname);
	snprintf(e[4], sizeof(e[4]), "CNI_PATH=%s", CNI_PLUGIN_DIR);
	snprintf(e[5], sizeof(e[5]), "CNI_ARGS=%s", c->args ? c->args : "");
	/* the plugins call iptables, ip and tc by name */
	char *envp[] = {e[0],
			e[1],
			e[2],
			e[3],
			e[4],
			e[5],
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			NULL};
	struct vs_run r = {.path = path,
			   .envp = envp,
			   .in = config,
			   .in_len = strlen(config),
			   .timeout_s = CNI_TIMEOUT_S,
			   .max_out = MAX_OUTPUT};
	struct vs_run_result res;
	if (vs_run(&r, &res, err) < 0)
		return vs_err_wrap(err, "plugin %s", type);
	int rc = -1, status = res.status;
	if (res.timed_out)
		vs_err(err, 0, "plugin %s: %s timed out after %d s", type, c->command,
		       CNI_TIMEOUT_S);
	else if (res.too_big)
		vs_err(err, 0, "plugin %s: more than %d bytes of output", type, MAX_OUTPUT);
	else if (WIFSIGNALED(status))
		vs_err(err, 0, "plugin %s: %s killed by signal %d", type, c->command,
		       WTERMSIG(status));
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char line[512];
		cni_error_line(res.out, res.out_len, line, sizeof(line));
		vs_err(err, 0, "plugin %s: %s failed: %s", type, c->command, line);
	} else {
		rc = 0;
		*out = res.out;
		*out_len = res.out_len;
		res.out = NULL;
	}
	free(res.out);
	return rc;
}

/* Does plugin carry a member other than these (NULL-terminated)? */
static bool has_settings(json_t *plugin, const char *const *except)
{
	const char *key;
	json_t *v;
	json_object_foreach(plugin, key, v) {
		bool known = false;
		for (const char *const *k = except; *k && !known; k++)
			known = strcmp(key, *k) == 0;
		if (!known)
			return true;
	}
	return false;
}

bool cni_plugin_idle(json_t *plugin, size_t nports, uint64_t rate)
{
	static const char *const bare[] = {"type", "capabilities", NULL};
	const char *type = json_string_value(json_object_get(plugin, "type"));
	if (!type || has_settings(plugin, bare))
		return false;
	if (strcmp(type, "portmap") == 0)
		return nports == 0;
	if (strcmp(type, "bandwidth") == 0)
		return rate == 0;
	return strcmp(type, "tuning") == 0;
}
