/* runc's ps, pause, resume, events --stats and update for a container in a microVM: the
 * guest's runtime does them on the container's cgroup there (an OCI request, agent_ops.c),
 * and what it writes back is checked before it reaches our stdout: the guest is not
 * trusted, its pids must be numbers and its stats an object. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "base/json.h"
#include "base/util.h"
#include "oci/state.h"
#include "vmc/control.h"
#include "vmc/hostcg.h"
#include "vmc/ops_msg.h"
#include "vmc/vmc.h"

/* One OCI request: the command's output (malloc'd, NUL-terminated, maybe empty) once the
 * agent answered OK, or -1 with err. */
static int request(const struct container_state *st, enum vmc_oci_cmd cmd, bool json,
		   char *const *ps_args, json_t *resources, char **out, size_t *out_len,
		   vs_err_t *err)
{
	*out = NULL;
	*out_len = 0;
	size_t len;
	char *msg = vmc_oci_msg_build(cmd, json, ps_args, resources, &len, err);
	if (!msg)
		return -1;
	int ret = -1;
	struct vmc_reader rd = {0};
	int fd = -1;
	if (len > VMC_MAX_PAYLOAD) {
		vs_err(err, 0, "the request is %zu bytes (at most %u)", len, VMC_MAX_PAYLOAD);
		goto out;
	}
	fd = vmc_control_open(st, err);
	if (fd < 0 || vmc_send(fd, VMC_OCI, msg, (uint32_t)len, err) < 0)
		goto out;
	struct vmc_frame f;
	int rc = vmc_read_frame(fd, &rd, &f, err);
	if (rc == 0) {
		vs_err(err, 0, "the agent closed the connection without an answer");
		goto out;
	}
	if (rc < 0)
		goto out;
	if (f.type == VMC_OUTPUT) {
		if (!(*out = malloc((size_t)f.len + 1))) {
			vs_err(err, ENOMEM, "the guest's output");
			goto out;
		}
		memcpy(*out, f.payload, f.len);
		(*out)[f.len] = '\0';
		*out_len = f.len;
	} else {
		/* no output: f is the answer, which the reader gives once more */
		rd.consumed = 0;
	}
	ret = vmc_control_answer(fd, &rd, VMC_OCI, err);
out:
	if (ret < 0) {
		free(*out);
		*out = NULL;
		vs_err_wrap(err, "container `%s` (in its microVM)", st->id);
	}
	vmc_reader_free(&rd);
	if (fd >= 0)
		close(fd);
	free(msg);
	return ret;
}

static int require_alive(const struct container_state *st, const char *cmd, vs_err_t *err)
{
	if (state_status(st) == STATUS_STOPPED)
		return vs_err(err, 0, "%s: container `%s`: container not running", cmd, st->id);
	return 0;
}

int vmc_ps(const struct container_state *st, bool json, char *const *ps_args, vs_err_t *err)
{
	if (require_alive(st, "ps", err) < 0)
		return -1;
	char *out = NULL;
	size_t len;
	if (request(st, VMC_OCI_PS, json, ps_args, NULL, &out, &len, err) < 0)
		return -1;
	int ret = 0;
	if (json) {
		/* guest pids: numbers, or it is not an answer */
		json_t *a = vjson_load_buffer(out, len, "the guest's ps", err);
		size_t i;
		json_t *p;
		bool ok = json_is_array(a);
		json_array_foreach(a, i, p) ok = ok && json_is_integer(p) &&
						 json_integer_value(p) > 0 &&
						 json_integer_value(p) < (1 << 22);
		char *text = ok ? json_dumps(a, JSON_COMPACT) : NULL;
		if (!ok && a)
			vs_err(err, 0,
			       "ps: container `%s`: the guest's answer is not a list of pids",
			       st->id);
		if (!text && ok)
			vs_err(err, ENOMEM, "ps");
		if (text)
			printf("%s\n", text);
		else
			ret = -1;
		free(text);
		json_decref(a);
	} else {
		/* the guest's ps(1) table: text, printable only */
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)out[i];
			if (c != '\n' && c != '\t' && (c < 0x20 || c >= 0x7f))
				out[i] = '?';
		}
		fwrite(out, 1, len, stdout);
	}
	fflush(stdout);
	free(out);
	return ret;
}

int vmc_set_paused(const struct container_state *st, bool pause, vs_err_t *err)
{
	char *out = NULL;
	size_t len;
	int rc =
	    request(st, pause ? VMC_OCI_PAUSE : VMC_OCI_RESUME, false, NULL, NULL, &out, &len, err);
	free(out);
	return rc;
}

json_t *vmc_stats(const struct container_state *st, vs_err_t *err)
{
	if (require_alive(st, "events", err) < 0)
		return NULL;
	char *out = NULL;
	size_t len;
	if (request(st, VMC_OCI_STATS, false, NULL, NULL, &out, &len, err) < 0)
		return NULL;
	json_t *ev = vjson_load_buffer(out, len, "the guest's stats", err);
	free(out);
	json_t *data = json_object_get(ev, "data");
	const char *type = json_string_value(json_object_get(ev, "type"));
	if (ev && (!json_is_object(data) || !type || strcmp(type, "stats"))) {
		vs_err(err, 0, "events: container `%s`: the guest's answer is not a stats event",
		       st->id);
		data = NULL;
	}
	json_incref(data);
	json_decref(ev);
	return data;
}

int vmc_update(struct container_state *st, json_t *resources, vs_err_t *err)
{
	if (require_alive(st, "update", err) < 0)
		return -1;
	char *out = NULL;
	size_t len;
	int rc = request(st, VMC_OCI_UPDATE, false, NULL, resources, &out, &len, err);
	free(out);
	/* the guest's cgroup holds the container's processes, the host's the vCPUs, and the
	 * balloon what the guest's RAM holds beyond the new limit */
	if (rc < 0 || vmc_hostcg_update(st, resources, err) < 0)
		return -1;
	return vmc_balloon_update(st, resources, err);
}
