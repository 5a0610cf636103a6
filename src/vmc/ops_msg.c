/* The OCI payload both ways. The agent trusts its host, but a malformed request must get
 * a clear ERROR, never a runtime command line the host did not mean. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "vmc/ops_msg.h"

static const char *const cmd_names[] = {
    [VMC_OCI_PS] = "ps",       [VMC_OCI_PAUSE] = "pause",   [VMC_OCI_RESUME] = "resume",
    [VMC_OCI_STATS] = "stats", [VMC_OCI_UPDATE] = "update",
};

#define N_CMDS (sizeof(cmd_names) / sizeof(cmd_names[0]))

char *vmc_oci_msg_build(enum vmc_oci_cmd cmd, bool json, char *const *ps_args, json_t *resources,
			size_t *len, vs_err_t *err)
{
	json_t *o = json_pack("{s:s}", "command", cmd_names[cmd]);
	int bad = !o;
	if (!bad && cmd == VMC_OCI_PS) {
		json_t *a = json_array();
		for (size_t i = 0; a && ps_args && ps_args[i]; i++)
			if (json_array_append_new(a, json_string(ps_args[i])) < 0)
				bad = 1;
		bad |= json_object_set_new(o, "format", json_string(json ? "json" : "table")) < 0 ||
		       json_object_set_new(o, "args", a) < 0;
	}
	if (!bad && cmd == VMC_OCI_UPDATE)
		bad = json_object_set(o, "resources", resources) < 0;
	char *s = bad ? NULL : json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s)
		return vs_err(err, ENOMEM, "OCI request"), NULL;
	*len = strlen(s);
	return s;
}

void vmc_oci_msg_release(struct vmc_oci_msg *m)
{
	for (size_t i = 0; m->ps_args && m->ps_args[i]; i++)
		free(m->ps_args[i]);
	free(m->ps_args);
	free(m->resources);
	memset(m, 0, sizeof(*m));
}

static int parse_ps(json_t *o, struct vmc_oci_msg *m, vs_err_t *err)
{
	const char *format = json_string_value(json_object_get(o, "format"));
	if (!format || (strcmp(format, "json") && strcmp(format, "table")))
		return vs_err(err, 0, "OCI: ps: format must be \"json\" or \"table\"");
	m->json = strcmp(format, "json") == 0;
	json_t *a = json_object_get(o, "args");
	if (!json_is_array(a))
		return vs_err(err, 0, "OCI: ps: args is not an array");
	size_t n = json_array_size(a);
	if (n > VMC_OCI_MAX_PS_ARGS)
		return vs_err(err, 0, "OCI: ps: %zu arguments (at most %d)", n,
			      VMC_OCI_MAX_PS_ARGS);
	if (!(m->ps_args = calloc(n + 1, sizeof(char *))))
		return vs_err(err, ENOMEM, "OCI");
	for (size_t i = 0; i < n; i++) {
		/* no NUL inside (an argv string would end there): json_loadb refuses \u0000 */
		const char *s = json_string_value(json_array_get(a, i));
		if (!s)
			return vs_err(err, 0, "OCI: ps: args[%zu] is not a string", i);
		if (!(m->ps_args[i] = strdup(s)))
			return vs_err(err, ENOMEM, "OCI");
	}
	return 0;
}

static int parse_update(json_t *o, struct vmc_oci_msg *m, vs_err_t *err)
{
	json_t *res = json_object_get(o, "resources");
	if (!json_is_object(res))
		return vs_err(err, 0, "OCI: update: resources is not an object");
	json_t *limit = json_object_get(json_object_get(res, "memory"), "limit");
	if (limit && !json_is_integer(limit))
		return vs_err(err, 0, "OCI: update: resources.memory.limit is not an integer");
	m->memory_limit = limit ? json_integer_value(limit) : 0;
	if (!(m->resources = json_dumps(res, JSON_COMPACT)))
		return vs_err(err, ENOMEM, "OCI");
	return 0;
}

int vmc_oci_msg_parse(const uint8_t *payload, size_t len, struct vmc_oci_msg *m, vs_err_t *err)
{
	memset(m, 0, sizeof(*m));
	json_error_t je;
	json_t *o = json_loadb((const char *)payload, len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(o)) {
		json_decref(o);
		return vs_err(err, 0, "OCI: not a JSON object");
	}
	int rc = -1;
	const char *name = json_string_value(json_object_get(o, "command"));
	size_t c = 0;
	while (name && c < N_CMDS && strcmp(cmd_names[c], name))
		c++;
	if (!name || c == N_CMDS) {
		vs_err(err, 0, "OCI: no such command");
		goto out;
	}
	m->cmd = (enum vmc_oci_cmd)c;
	/* only the command's own keys: a request the agent half-understands is refused */
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v)
	{
		bool mine =
		    strcmp(key, "command") == 0 ||
		    (m->cmd == VMC_OCI_PS && (!strcmp(key, "format") || !strcmp(key, "args"))) ||
		    (m->cmd == VMC_OCI_UPDATE && !strcmp(key, "resources"));
		if (!mine) {
			vs_err(err, 0, "OCI: %s takes no `%.64s`", cmd_names[m->cmd], key);
			goto out;
		}
	}
	if (m->cmd == VMC_OCI_PS)
		rc = parse_ps(o, m, err);
	else if (m->cmd == VMC_OCI_UPDATE)
		rc = parse_update(o, m, err);
	else
		rc = 0;
out:
	json_decref(o);
	if (rc < 0)
		vmc_oci_msg_release(m);
	return rc;
}

char **vmc_oci_argv(const struct vmc_oci_msg *m, const char *id, const char *resources_file,
		    int *argc, vs_err_t *err)
{
	size_t extra = 0;
	while (m->ps_args && m->ps_args[extra])
		extra++;
	char **v = calloc(extra + 6, sizeof(char *));
	if (!v)
		return vs_err(err, ENOMEM, "OCI"), NULL;
	int n = 0;
	switch (m->cmd) {
	case VMC_OCI_PS:
		v[n++] = "ps";
		v[n++] = m->json ? "--format=json" : "--format=table";
		v[n++] = (char *)id;
		for (size_t i = 0; i < extra; i++)
			v[n++] = m->ps_args[i];
		break;
	case VMC_OCI_PAUSE:
	case VMC_OCI_RESUME:
		v[n++] = m->cmd == VMC_OCI_PAUSE ? "pause" : "resume";
		v[n++] = (char *)id;
		break;
	case VMC_OCI_STATS:
		v[n++] = "events";
		v[n++] = "--stats";
		v[n++] = (char *)id;
		break;
	case VMC_OCI_UPDATE:
		v[n++] = "update";
		v[n++] = "--resources";
		v[n++] = (char *)resources_file;
		v[n++] = (char *)id;
		break;
	}
	*argc = n;
	return v;
}

int vmc_oci_check_memory(const struct vmc_oci_msg *m, uint64_t ram, vs_err_t *err)
{
	if (m->cmd != VMC_OCI_UPDATE || m->memory_limit <= 0 || (uint64_t)m->memory_limit <= ram)
		return 0;
	return vs_err(err, 0,
		      "update: a memory limit of %" PRId64 " MiB is more than the microVM's "
		      "%" PRIu64 " MiB of RAM, which is fixed when it boots (the balloon can "
		      "give memory back, not grow the VM beyond its boot RAM); recreate the "
		      "container with a higher linux.resources.memory.limit",
		      m->memory_limit >> 20, ram >> 20);
}
