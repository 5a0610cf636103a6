/* state.json: every field checked for type and range, the phases and what they mean for
 * status, and a record that appears with its directory. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/proc.h"
#include "oci/state.h"

static const char *created_record =
    "{\"id\": \"c1\", \"phase\": \"created\", \"pid\": 42, \"start_time\": 1000,"
    " \"runtime_pid\": 7, \"runtime_start_time\": 900, \"bundle\": \"/b\","
    " \"rootfs\": \"/b/rootfs\", \"created\": \"2026-12-06T00:00:00Z\", \"owner\": 0,"
    " \"paused\": false, \"annotations\": {\"a\": \"b\"}, \"hooks\": null, \"cgroup\": null}";

static int parse(const char *text, struct container_state *st, vs_err_t *err)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	cr_assert_not_null(j, "fixture is not JSON: %s", jerr.text);
	memset(st, 0, sizeof(*st));
	st->dir_fd = -1;
	st->id = strdup("c1");
	int rc = state_parse(j, st, err);
	json_decref(j);
	return rc;
}

/* The created record with key set to value (a JSON text), or removed when value is NULL. */
static char *edit(const char *key, const char *value)
{
	json_t *j = json_loads(created_record, 0, NULL);
	if (value)
		json_object_set_new(j, key, json_loads(value, JSON_DECODE_ANY, NULL));
	else
		json_object_del(j, key);
	char *text = json_dumps(j, 0);
	json_decref(j);
	return text;
}

static void expect_error(const char *key, const char *value, const char *msg)
{
	char *text = edit(key, value);
	struct container_state st;
	vs_err_t err = NULL;
	cr_assert_eq(parse(text, &st, &err), -1, "%s = %s was accepted", key, value);
	cr_assert(strstr(err->msg, msg), "`%s` does not say `%s`", err->msg, msg);
	vs_err_free(&err);
	state_release(&st);
	free(text);
}

Test(state, created_record_parses)
{
	struct container_state st;
	vs_err_t err = NULL;
	cr_assert_eq(parse(created_record, &st, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(st.phase, PHASE_CREATED);
	cr_assert_eq(st.pid, 42);
	cr_assert_eq(st.start_time, 1000);
	cr_assert_str_eq(st.bundle, "/b");
	cr_assert_not_null(st.annotations);
	cr_assert_null(st.hooks);
	state_release(&st);
}

Test(state, record_without_phase_is_created)
{
	/* written by a vessel from before the phases */
	char *text = edit("phase", NULL);
	struct container_state st;
	cr_assert_eq(parse(text, &st, NULL), 0);
	cr_assert_eq(st.phase, PHASE_CREATED);
	state_release(&st);
	free(text);
}

Test(state, fields_are_checked)
{
	expect_error("pid", "\"12\"", "state.json.pid");
	expect_error("pid", "-1", "state.json.pid");
	expect_error("pid", "99999999", "state.json.pid");
	expect_error("start_time", "1.5", "state.json.start_time");
	expect_error("runtime_pid", "true", "state.json.runtime_pid");
	expect_error("owner", "-1", "state.json.owner");
	expect_error("owner", "4294967295", "state.json.owner");
	expect_error("paused", "1", "state.json.paused");
	expect_error("bundle", "3", "state.json.bundle");
	expect_error("bundle", NULL, "state.json.bundle");
	expect_error("annotations", "[]", "state.json.annotations");
	expect_error("cgroup", "\"/sys/fs/cgroup\"", "state.json.cgroup");
	expect_error("phase", "\"started\"", "state.json.phase");
	expect_error("id", "\"other\"", "not this container's id");
	expect_error("pid", "0", "needs its pid");
	expect_error("start_time", "0", "needs its pid");
}

Test(state, not_an_object)
{
	struct container_state st;
	vs_err_t err = NULL;
	cr_assert_eq(parse("[1]", &st, &err), -1);
	cr_assert(strstr(err->msg, "must be an object"));
	vs_err_free(&err);
	state_release(&st);
}

Test(state, creating_record_needs_its_runtime)
{
	char *text = edit("phase", "\"creating\"");
	struct container_state st;
	cr_assert_eq(parse(text, &st, NULL), 0);
	cr_assert_eq(st.phase, PHASE_CREATING);
	state_release(&st);
	free(text);
}

Test(state, creating_without_runtime_is_refused)
{
	json_t *j = json_loads(created_record, 0, NULL);
	json_object_set_new(j, "phase", json_string("creating"));
	json_object_set_new(j, "runtime_pid", json_integer(0));
	json_object_set_new(j, "runtime_start_time", json_integer(0));
	char *text = json_dumps(j, 0);
	json_decref(j);
	struct container_state st;
	vs_err_t err = NULL;
	cr_assert_eq(parse(text, &st, &err), -1);
	cr_assert(strstr(err->msg, "runtime_pid"));
	vs_err_free(&err);
	state_release(&st);
	free(text);
}

/* status of a creating record: creating while its runtime lives, stopped after */
Test(state, creating_status_follows_the_runtime)
{
	struct container_state st = {.phase = PHASE_CREATING, .dir_fd = -1};
	st.runtime_pid = getpid();
	st.runtime_start_time = proc_start_time(getpid());
	cr_assert_eq(state_status(&st), STATUS_CREATING);
	st.runtime_start_time += 1; /* a recycled pid */
	cr_assert_eq(state_status(&st), STATUS_STOPPED);
}

static char root[] = "/tmp/vessel-state-XXXXXX";

Test(state, create_then_load_and_garble)
{
	cr_assert_not_null(mkdtemp(root));
	struct vs_globals g = {.root = root};
	struct container_state st = {.dir_fd = -1};
	st.phase = PHASE_CREATING;
	st.runtime_pid = getpid();
	st.runtime_start_time = proc_start_time(getpid());
	st.bundle = strdup("/b");
	vs_err_t err = NULL;
	cr_assert_eq(state_create(&g, "c1", &st, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(state_create(&g, "c1", &st, &err), -1);
	cr_assert(strstr(err->msg, "already exists"));
	vs_err_free(&err);

	struct container_state got;
	cr_assert_eq(state_load(&g, "c1", false, &got, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(got.phase, PHASE_CREATING);
	cr_assert_eq(state_status(&got), STATUS_CREATING);
	state_release(&got);

	/* nothing but the named directory is left in the root */
	char path[256];
	snprintf(path, sizeof(path), "%s/c1/state.json", root);
	FILE *f = fopen(path, "w");
	fputs("{\"id\": ", f);
	fclose(f);
	cr_assert_eq(state_load(&g, "c1", false, &got, &err), -1);
	cr_assert(got.garbled);
	cr_assert(strstr(err->msg, "state record"), "%s", err->msg);
	vs_err_free(&err);
	cr_assert_eq(state_remove(&got, &err), 0);
	state_release(&got);
	state_release(&st);

	cr_assert_eq(state_load(&g, "c1", false, &got, &err), -1);
	cr_assert_not(got.garbled);
	cr_assert(strstr(err->msg, "does not exist"));
	vs_err_free(&err);
	state_release(&got);
	cr_assert_eq(rmdir(root), 0, "the state root is not empty");
}

Test(state, sweep_removes_dead_temporaries_only)
{
	char r[] = "/tmp/vessel-sweep-XXXXXX";
	cr_assert_not_null(mkdtemp(r));
	struct vs_globals g = {.root = r};
	char dead[512], live[512];
	snprintf(dead, sizeof(dead), "%s/.new-%d-%llu", r, getpid(),
		 (unsigned long long)proc_start_time(getpid()) + 1);
	snprintf(live, sizeof(live), "%s/.new-%d-%llu", r, getpid(),
		 (unsigned long long)proc_start_time(getpid()));
	cr_assert_eq(mkdir(dead, 0700), 0);
	cr_assert_eq(mkdir(live, 0700), 0);
	state_sweep_unnamed(&g);
	cr_assert_neq(access(dead, F_OK), 0);
	cr_assert_eq(access(live, F_OK), 0);
	rmdir(live);
	rmdir(r);
}
