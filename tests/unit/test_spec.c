/* The config.json parser: good documents load, every bad field is named. */
#include <criterion/criterion.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>

#include "base/error.h"
#include "oci/spec.h"

static const char *minimal =
	"{\"ociVersion\": \"1.2.0\", \"root\": {\"path\": \"rootfs\"},"
	" \"process\": {\"args\": [\"sh\"], \"cwd\": \"/\", \"user\": {\"uid\": 0, \"gid\": 0}},"
	" \"linux\": {\"namespaces\": [{\"type\": \"mount\"}, {\"type\": \"pid\"}]}}";

static struct spec *parse_ok(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	cr_assert_not_null(j, "fixture is not JSON: %s", jerr.text);
	struct spec *s = NULL;
	vs_err_t err = NULL;
	int rc = spec_parse(j, "/b", &s, &err);
	cr_assert_eq(rc, 0, "unexpected error: %s", err ? err->msg : "");
	json_decref(j);
	return s;
}

/* Applies one JSON-pointer-free edit to the minimal document and expects msg. */
static void expect_error(const char *path_key, const char *value_json, const char *msg)
{
	json_t *j = json_loads(minimal, 0, NULL);
	json_t *obj = j;
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", path_key);
	char *save = NULL, *tok = strtok_r(buf, ".", &save), *next;
	while ((next = strtok_r(NULL, ".", &save))) {
		json_t *child = json_object_get(obj, tok);
		if (!child) {
			child = json_object();
			json_object_set_new(obj, tok, child);
		}
		obj = child;
		tok = next;
	}
	json_object_set_new(obj, tok, json_loads(value_json, JSON_DECODE_ANY, NULL));
	struct spec *s = NULL;
	vs_err_t err = NULL;
	cr_assert_eq(spec_parse(j, "/b", &s, &err), -1, "%s=%s parsed", path_key, value_json);
	cr_assert_not_null(err);
	cr_assert(strstr(err->msg, msg), "for %s: got `%s`, want `%s`", path_key, err->msg, msg);
	vs_err_free(&err);
	json_decref(j);
}

Test(spec, minimal_document_loads)
{
	struct spec *s = parse_ok(minimal);
	cr_assert_str_eq(s->root_path, "/b/rootfs");
	cr_assert_str_eq(s->process.args[0], "sh");
	cr_assert(s->ns[NS_MNT].enabled && s->ns[NS_PID].enabled && !s->ns[NS_NET].enabled);
	cr_assert_eq(s->personality, -1);
	spec_free(s);
}

Test(spec, mount_options_split_into_flags_propagation_and_data)
{
	struct spec *s = parse_ok(
		"{\"ociVersion\": \"1.0.2-dev\", \"root\": {\"path\": \"/r\"}, \"mounts\": ["
		"{\"destination\": \"/d\", \"type\": \"tmpfs\", \"source\": \"tmpfs\","
		" \"options\": [\"nosuid\", \"ro\", \"rw\", \"rprivate\", \"mode=755\", \"size=1m\"]},"
		"{\"destination\": \"/b\", \"source\": \"rel/dir\", \"options\": [\"rbind\"]}]}");
	cr_assert_eq(s->n_mounts, 2);
	cr_assert_eq(s->mounts[0].flags, MS_NOSUID);
	cr_assert_eq(s->mounts[0].clear_flags, MS_RDONLY);
	cr_assert_eq(s->mounts[0].propagation, MS_PRIVATE | MS_REC);
	cr_assert_str_eq(s->mounts[0].data, "mode=755,size=1m");
	cr_assert(s->mounts[1].bind && s->mounts[1].recursive);
	cr_assert_str_eq(s->mounts[1].source, "/b/rel/dir");
	cr_assert_str_eq(s->root_path, "/r");
	spec_free(s);
}

Test(spec, hooks_and_id_mappings)
{
	struct spec *s = parse_ok(
		"{\"ociVersion\": \"1.1.0\", \"root\": {\"path\": \"r\"},"
		" \"hooks\": {\"poststop\": [{\"path\": \"/bin/x\", \"timeout\": 5}]},"
		" \"linux\": {\"namespaces\": [{\"type\": \"user\"}, {\"type\": \"network\","
		" \"path\": \"/proc/1/ns/net\"}],"
		" \"uidMappings\": [{\"containerID\": 0, \"hostID\": 1000, \"size\": 1}],"
		" \"gidMappings\": [{\"containerID\": 0, \"hostID\": 1000, \"size\": 1}]}}");
	cr_assert_eq(s->hooks.n[HOOK_POSTSTOP], 1);
	cr_assert_eq(s->hooks.list[HOOK_POSTSTOP][0].timeout, 5);
	cr_assert_eq(s->n_uid_mappings, 1);
	cr_assert_eq(s->uid_mappings[0].host_id, 1000);
	cr_assert_str_eq(s->ns[NS_NET].path, "/proc/1/ns/net");
	spec_free(s);
}

Test(spec, every_bad_field_is_named)
{
	expect_error("ociVersion", "\"2.0\"", "ociVersion: unsupported version `2.0`");
	expect_error("ociVersion", "12", "ociVersion: must be a string");
	expect_error("root", "null", "root: is required");
	expect_error("root.path", "\"\"", "root.path: must not be empty");
	expect_error("root.readonly", "\"yes\"", "root.readonly: must be a boolean");
	expect_error("process.args", "[]", "process.args: must be a non-empty array of strings");
	expect_error("process.args", "[\"a\", 1]", "process.args: must be a non-empty array");
	expect_error("process.cwd", "\"tmp\"", "process.cwd: must be an absolute path");
	expect_error("process.env", "[\"NOEQUALS\"]", "process.env[0]: must be KEY=VALUE");
	expect_error("process.user.uid", "4294967295", "must be below 4294967295");
	expect_error("process.user.gid", "-5", "process.user.gid: must be an integer from 0");
	expect_error("process.user.umask", "4096", "process.user.umask: must be from 0 to 0777");
	expect_error("process.user.additionalGids", "[\"a\"]",
		     "process.user.additionalGids[0]: must be a group id");
	expect_error("process.rlimits", "[{\"type\": \"RLIMIT_NOFILE\", \"soft\": 5, \"hard\": 1}]",
		     "process.rlimits[0]: soft limit 5 is above the hard limit 1");
	expect_error("process.oomScoreAdj", "5000", "process.oomScoreAdj: must be an integer");
	expect_error("process.consoleSize.height", "-1", "process.consoleSize.height");
	expect_error("hostname", "\"h\"", "hostname: needs a new uts namespace");
	expect_error("mounts", "[{\"destination\": \"/x\"}]", "mounts[0].type: is required");
	expect_error("mounts", "[{\"destination\": \"/x\", \"options\": [\"bind\"]}]",
		     "mounts[0].source: is required for a bind mount");
	expect_error("mounts", "[{\"destination\": \"/x\", \"type\": \"t\", \"options\": [3]}]",
		     "mounts[0].options[0]: must be a string");
	expect_error("hooks.poststart", "[{\"path\": \"/x\", \"timeout\": 0}]",
		     "hooks.poststart[0].timeout: must be a positive number");
	expect_error("linux.namespaces", "[{\"type\": \"mount\"}, {\"type\": \"weird\"}]",
		     "linux.namespaces[1].type: unknown namespace type `weird`");
	expect_error("linux.namespaces", "[{\"type\": \"user\"}]",
		     "a new user namespace needs both");
	expect_error("linux.uidMappings", "[{\"containerID\": 0, \"hostID\": 0, \"size\": 1}]",
		     "needs a user namespace");
	expect_error("linux.devices", "[{\"path\": \"/dev/x\", \"type\": \"q\"}]",
		     "linux.devices[0].type: must be c, b, u or p");
	expect_error("linux.devices", "[{\"path\": \"/dev/../etc\", \"type\": \"c\"}]",
		     "linux.devices[0].path: must be an absolute path without `..`");
	expect_error("linux.devices", "[{\"path\": \"/dev/x\", \"type\": \"c\", \"major\": 1}]",
		     "major and minor are required");
	expect_error("linux.devices",
		     "[{\"path\": \"/dev/x\", \"type\": \"c\", \"major\": 1, \"minor\": 3,"
		     " \"fileMode\": 25008}]",
		     "linux.devices[0].fileMode: must be a permission mode");
	expect_error("linux.sysctl", "{\"kernel.panic\": \"1\"}",
		     "linux.sysctl.kernel.panic: not a namespaced sysctl");
	expect_error("linux.sysctl", "{\"net/../x\": \"1\"}", "linux.sysctl: invalid key");
	expect_error("linux.rootfsPropagation", "\"wobbly\"", "unknown propagation `wobbly`");
	expect_error("linux.timeOffsets", "{\"realtime\": {}}", "linux.timeOffsets.realtime");
	expect_error("linux.timeOffsets", "{\"boottime\": {\"secs\": 1}}",
		     "needs a time namespace");
	expect_error("linux.personality", "{\"domain\": \"WIN32\"}",
		     "linux.personality.domain: must be LINUX or LINUX32");
	expect_error("annotations", "{\"a\": 1}", "annotations.a: must be a string");
	expect_error("linux.resources.pids", "{\"limit\": \"many\"}", "linux.resources.pids.limit");
}

Test(spec, device_file_mode_may_carry_its_type_bits)
{
	/* podman's --device: the host's st_mode, S_IFCHR | 0600 */
	struct spec *s = parse_ok(
		"{\"ociVersion\": \"1.2.0\", \"root\": {\"path\": \"r\"}, \"linux\": {\"devices\": ["
		"{\"path\": \"/dev/fuse\", \"type\": \"c\", \"major\": 10, \"minor\": 229,"
		" \"fileMode\": 8576}]}}");
	cr_assert_eq(s->devices[0].mode, 0600);
	spec_free(s);
}

Test(spec, the_whole_default_spec_parses)
{
	/* what `vessel spec` writes must load back */
	static const char text[] =
#include "oci/default_spec.inc"
		;
	struct spec *s = parse_ok(text);
	cr_assert_str_eq(s->hostname, "vessel");
	cr_assert(s->root_readonly);
	cr_assert(s->n_mounts >= 7);
	cr_assert(s->process.no_new_privileges);
	spec_free(s);
}
