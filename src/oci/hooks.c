#include "oci/hooks.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "base/log.h"
#include "base/run.h"
#include "base/util.h"

static int run_one(const struct spec_hook *h, const char *name, const char *state_text,
		   vs_err_t *err)
{
	struct vs_run r = {.path = h->path,
			   .argv = h->args,
			   .envp = h->env,
			   .in = state_text,
			   .in_len = strlen(state_text),
			   .timeout_s = h->timeout};
	struct vs_run_result res;
	if (vs_run(&r, &res, err) < 0)
		return vs_err_wrap(err, "%s", name);
	int status = res.status;
	if (res.timed_out)
		return vs_err(err, 0, "%s: `%s` timed out after %d s", name, h->path, h->timeout);
	if (WIFEXITED(status) && WEXITSTATUS(status) == VS_RUN_EXEC_FAILED)
		return vs_err(err, 0, "%s: `%s` could not be run (exit status 127)", name, h->path);
	if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		return vs_err(err, 0, "%s: `%s` failed with exit status %d", name, h->path,
			      WEXITSTATUS(status));
	if (WIFSIGNALED(status))
		return vs_err(err, 0, "%s: `%s` was killed by signal %d", name, h->path,
			      WTERMSIG(status));
	return 0;
}

/* The spec: once the container runs (poststart) or is gone (poststop), a failing hook
 * is a warning and the remaining hooks of the phase still run. */
static bool keeps_going(enum spec_hook_kind kind)
{
	return kind == HOOK_POSTSTART || kind == HOOK_POSTSTOP;
}

int hooks_run(const struct spec_hooks *hooks, enum spec_hook_kind kind, json_t *state,
	      vs_err_t *err)
{
	if (!hooks->n[kind])
		return 0;
	cleanup_free char *text = json_dumps(state, JSON_COMPACT);
	if (!text)
		return vs_err(err, ENOMEM, "hooks");
	for (size_t i = 0; i < hooks->n[kind]; i++) {
		char name[64];
		snprintf(name, sizeof(name), "hooks.%s[%zu]", spec_hook_kind_name(kind), i);
		vs_debug("running %s: %s", name, hooks->list[kind][i].path);
		if (!keeps_going(kind)) {
			if (run_one(&hooks->list[kind][i], name, text, err) < 0)
				return -1;
			continue;
		}
		cleanup_err vs_err_t failed = NULL;
		if (run_one(&hooks->list[kind][i], name, text, &failed) < 0)
			vs_warn("%s", failed->msg);
	}
	return 0;
}

int hooks_run_json(json_t *hooks_json, enum spec_hook_kind kind, json_t *state, vs_err_t *err)
{
	if (!json_is_object(hooks_json))
		return 0;
	struct spec_hooks h = {0};
	int rc = spec_parse_hooks(hooks_json, "hooks", &h, err);
	if (rc == 0)
		rc = hooks_run(&h, kind, state, err);
	spec_hooks_release(&h);
	return rc;
}
