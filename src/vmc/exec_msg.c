/* The EXEC payload both ways. The agent trusts its host, but the checks keep a confused
 * one from steering the guest's exec into options only the agent may set. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "vmc/exec_msg.h"

/* the guest's exec options the agent sets itself, or that need a terminal */
static const char *const reserved[] = {"detach", "pid-file",	   "process",
				       "tty",	 "console-socket", "preserve-fds"};

static bool option_allowed(const char *s)
{
	if (strncmp(s, "--", 2) != 0 || !s[2])
		return false;
	const char *name = s + 2;
	size_t n = strcspn(name, "=");
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (strlen(reserved[i]) == n && strncmp(name, reserved[i], n) == 0)
			return false;
	return true;
}

static json_t *strv_json(char *const *v)
{
	json_t *a = json_array();
	for (size_t i = 0; a && v && v[i]; i++)
		if (json_array_append_new(a, json_string(v[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

char *vmc_exec_msg_build(char *const *options, char *const *command, json_t *process, bool terminal,
			 size_t *len, vs_err_t *err)
{
	json_t *o = json_object();
	if (!o || json_object_set_new(o, "options", strv_json(options)) < 0 ||
	    json_object_set_new(o, "command", strv_json(command)) < 0 ||
	    (process && json_object_set(o, "process", process) < 0) ||
	    (terminal && json_object_set_new(o, "terminal", json_true()) < 0)) {
		json_decref(o);
		return vs_err(err, ENOMEM, "exec request"), NULL;
	}
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s)
		return vs_err(err, ENOMEM, "exec request"), NULL;
	*len = strlen(s);
	return s;
}

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static int strv_parse(json_t *a, const char *what, char ***out, vs_err_t *err)
{
	if (!json_is_array(a))
		return vs_err(err, 0, "EXEC: %s is not an array", what);
	size_t n = json_array_size(a);
	if (n > VMC_EXEC_MAX_ARGS)
		return vs_err(err, 0, "EXEC: %zu %s (at most %d)", n, what, VMC_EXEC_MAX_ARGS);
	char **v = calloc(n + 1, sizeof(char *));
	if (!v)
		return vs_err(err, ENOMEM, "EXEC");
	for (size_t i = 0; i < n; i++) {
		json_t *s = json_array_get(a, i);
		/* no NUL inside (an argv string would end there): json_loadb refuses \u0000 */
		if (!json_is_string(s)) {
			strv_free(v);
			return vs_err(err, 0, "EXEC: %s[%zu] is not a string", what, i);
		}
		if (!(v[i] = strdup(json_string_value(s)))) {
			strv_free(v);
			return vs_err(err, ENOMEM, "EXEC");
		}
	}
	*out = v;
	return 0;
}

int vmc_exec_msg_parse(const uint8_t *payload, size_t len, struct vmc_exec_msg *m, vs_err_t *err)
{
	memset(m, 0, sizeof(*m));
	json_error_t je;
	json_t *o = json_loadb((const char *)payload, len, JSON_REJECT_DUPLICATES, &je);
	int ret = -1;
	if (!json_is_object(o)) {
		vs_err(err, 0, "EXEC: not a JSON object");
		goto out;
	}
	if (strv_parse(json_object_get(o, "options"), "options", &m->options, err) < 0 ||
	    strv_parse(json_object_get(o, "command"), "command", &m->command, err) < 0)
		goto out;
	for (size_t i = 0; m->options[i]; i++)
		if (!option_allowed(m->options[i])) {
			vs_err(err, 0, "EXEC: option `%s` is not one the host may pass",
			       m->options[i]);
			goto out;
		}
	json_t *p = json_object_get(o, "process");
	if (p && !json_is_object(p)) {
		vs_err(err, 0, "EXEC: process is not an object");
		goto out;
	}
	if (p && m->command[0]) {
		vs_err(err, 0, "EXEC: both a process and a command");
		goto out;
	}
	if (!p && !m->command[0]) {
		vs_err(err, 0, "EXEC: neither a process nor a command");
		goto out;
	}
	json_t *t = json_object_get(o, "terminal");
	if (t && !json_is_boolean(t)) {
		vs_err(err, 0, "EXEC: terminal is not a boolean");
		goto out;
	}
	m->terminal = json_is_true(t);
	/* the guest's exec takes a process's terminal from it: the agent must expect the pty
	 * exactly when that exec makes one */
	if (p && m->terminal != json_is_true(json_object_get(p, "terminal"))) {
		vs_err(err, 0, "EXEC: terminal and process.terminal differ");
		goto out;
	}
	if (p && !(m->process = json_dumps(p, JSON_COMPACT))) {
		vs_err(err, ENOMEM, "EXEC");
		goto out;
	}
	ret = 0;
out:
	json_decref(o);
	if (ret < 0)
		vmc_exec_msg_release(m);
	return ret;
}

char **vmc_exec_argv(const struct vmc_exec_msg *m, const char *id, const char *pid_file,
		     const char *process_file, const char *console, int *argc, vs_err_t *err)
{
	size_t no = 0, nc = 0;
	while (m->options[no])
		no++;
	while (m->command[nc])
		nc++;
	char **v = calloc(no + nc + 11, sizeof(char *));
	if (!v)
		return vs_err(err, ENOMEM, "exec"), NULL;
	int n = 0;
	v[n++] = "exec";
	v[n++] = "--detach";
	v[n++] = "--pid-file";
	v[n++] = (char *)pid_file;
	if (m->process) {
		v[n++] = "--process";
		v[n++] = (char *)process_file;
	}
	if (m->terminal) {
		if (!m->process)
			v[n++] = "--tty";
		v[n++] = "--console-socket";
		v[n++] = (char *)console;
	}
	for (size_t i = 0; i < no; i++)
		v[n++] = m->options[i];
	v[n++] = (char *)id;
	for (size_t i = 0; i < nc; i++)
		v[n++] = m->command[i];
	v[n] = NULL;
	*argc = n;
	return v;
}

void vmc_exec_msg_release(struct vmc_exec_msg *m)
{
	strv_free(m->options);
	strv_free(m->command);
	free(m->process);
	memset(m, 0, sizeof(*m));
}
