/* VM-isolated containers' bind mounts and runc's ps/pause/resume/events/update, without a
 * VM: which config.json mount reaches the guest how (mounts.c: a directory a share, a file
 * a copy, /dev/shm the guest's tmpfs, the rest and too many refused), the agent's reading
 * of CONFIG's counts and FILE frames, and the OCI request (ops_msg.c) from what the host
 * builds to the guest runtime's command line, what it refuses, and update's memory check. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "vmc/mounts.h"
#include "vmc/ops_msg.h"
#include "vmc/proto.h"

static char dir[] = "/tmp/vmc-ops-XXXXXX";

static void make_tree(void)
{
	cr_assert_not_null(mkdtemp(dir));
	char p[256];
	snprintf(p, sizeof(p), "%s/shared", dir);
	cr_assert_eq(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/hosts", dir);
	FILE *f = fopen(p, "w");
	fputs("127.0.0.1 localhost\n", f);
	fclose(f);
}

static void remove_tree(void)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(vmc_binds, .init = make_tree, .fini = remove_tree);

static json_t *config_with(const char *mounts_fmt)
{
	char text[2048];
	snprintf(text, sizeof(text), mounts_fmt, dir, dir, dir, dir);
	json_error_t je;
	json_t *c = json_loads(text, 0, &je);
	cr_assert_not_null(c, "%s: %s", text, je.text);
	return c;
}

static const char *source(json_t *c, size_t i)
{
	return json_string_value(
	    json_object_get(json_array_get(json_object_get(c, "mounts"), i), "source"));
}

Test(vmc_binds, each_kind_goes_its_way)
{
	json_t *c = config_with(
	    "{\"mounts\": ["
	    "{\"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\"},"
	    "{\"destination\": \"/mnt\", \"type\": \"bind\", \"source\": \"%s/shared\","
	    " \"options\": [\"rbind\", \"ro\"]},"
	    "{\"destination\": \"/etc/hosts\", \"source\": \"%s/hosts\", \"options\": [\"bind\"]},"
	    "{\"destination\": \"/w\", \"source\": \"%s/shared\", \"options\": [\"bind\", \"ro\", "
	    "\"rw\"]},"
	    "{\"destination\": \"/dev/shm\", \"type\": \"bind\", \"source\": \"%s/shared\"}]}");
	struct vmc_binds b;
	vs_err_t err = NULL;
	cr_assert_eq(vmc_binds_plan(c, "/bundle", &b, &err), 0, "%s", err ? err->msg : "");
	cr_assert_str_eq(source(c, 0), "proc");
	cr_assert_str_eq(source(c, 1), VMC_GUEST_SHARES "/0");
	cr_assert_str_eq(source(c, 2), VMC_GUEST_FILES "/0");
	cr_assert_str_eq(source(c, 3), VMC_GUEST_SHARES "/1");
	cr_assert_eq(b.n_shares, 2);
	cr_assert(b.shares[0].readonly);
	cr_assert(!b.shares[1].readonly, "the last of ro and rw wins");
	cr_assert(strstr(b.shares[0].source, "/shared"));
	cr_assert_eq(b.n_files, 1);
	cr_assert_eq(b.files[0].len, 20);
	cr_assert_eq(memcmp(b.files[0].data, "127.0.0.1 localhost\n", 20), 0);
	json_t *shm = json_array_get(json_object_get(c, "mounts"), 4);
	cr_assert_str_eq(json_string_value(json_object_get(shm, "type")), "tmpfs");
	cr_assert_str_eq(source(c, 4), "shm");
	vmc_binds_release(&b);
	json_decref(c);
}

static void refused(json_t *c, const char *bundle, const char *want)
{
	struct vmc_binds b;
	vs_err_t err = NULL;
	cr_assert_eq(vmc_binds_plan(c, bundle, &b, &err), -1);
	cr_assert(err && strstr(err->msg, want), "`%s` lacks `%s`", err ? err->msg : "", want);
	cr_assert_eq(b.n_shares + b.n_files, 0, "released on failure");
	vs_err_free(&err);
	json_decref(c);
}

Test(vmc_binds, refusals_name_the_mount)
{
	refused(config_with("{\"mounts\": [{\"destination\": \"/n\", \"type\": \"bind\", "
			    "\"source\": \"/dev/null\"}]}"),
		"/", "character device can't reach a microVM");
	refused(config_with("{\"mounts\": [{\"destination\": \"/n\", \"type\": \"bind\", "
			    "\"source\": \"%s/missing\"}]}"),
		"/", "mounts[0]: the source of the bind mount on `/n`");
	refused(config_with("{\"mounts\": [{\"type\": \"bind\", \"source\": \"/tmp\"}]}"), "/",
		"needs a source and a destination");
	/* relative to the bundle */
	refused(config_with("{\"mounts\": [{\"destination\": \"/x\", \"type\": \"bind\", "
			    "\"source\": \"nowhere\"}]}"),
		dir, "nowhere");
}

Test(vmc_binds, limits)
{
	json_t *c = json_pack("{s:[]}", "mounts");
	char src[256];
	snprintf(src, sizeof(src), "%s/shared", dir);
	for (int i = 0; i <= VMC_MAX_SHARES; i++)
		json_array_append_new(json_object_get(c, "mounts"),
				      json_pack("{s:s, s:s, s:s}", "destination", "/d", "type",
						"bind", "source", src));
	refused(c, "/", "at most 8 directories");

	char big[256];
	snprintf(big, sizeof(big), "%s/big", dir);
	FILE *f = fopen(big, "w");
	for (unsigned i = 0; i <= VMC_MAX_FILE_SIZE; i++)
		fputc('x', f);
	fclose(f);
	c = json_pack("{s:[{s:s, s:s, s:s}]}", "mounts", "destination", "/big", "type", "bind",
		      "source", big);
	refused(c, "/", "at most 256 KiB");
}

Test(vmc_binds, guest_counts)
{
	size_t s, f;
	vs_err_t err = NULL;
	json_t *m = json_pack("{s:i, s:i}", "shares", 2, "files", 3);
	cr_assert_eq(vmc_binds_counts(m, &s, &f, &err), 0);
	cr_assert_eq(s, 2);
	cr_assert_eq(f, 3);
	json_decref(m);
	m = json_pack("{}");
	cr_assert_eq(vmc_binds_counts(m, &s, &f, &err), 0, "absent: none");
	cr_assert_eq(s + f, 0);
	json_decref(m);
	const char *bad[] = {"{\"shares\": 9}", "{\"files\": 17}", "{\"shares\": -1}",
			     "{\"files\": \"2\"}", "{\"shares\": 1.5}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		m = json_loads(bad[i], 0, NULL);
		cr_assert_eq(vmc_binds_counts(m, &s, &f, &err), -1, "%s", bad[i]);
		cr_assert(strstr(err->msg, "CONFIG"));
		vs_err_free(&err);
		json_decref(m);
	}
}

/* the agent reads the FILE frames CONFIG announced; anything else is refused */
Test(vmc_binds, guest_wants_file_frames)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	vs_err_t err = NULL;
	cr_assert_eq(vmc_send(sv[0], VMC_STDIN, "x", 1, &err), 0);
	json_t *m = json_pack("{s:i}", "files", 1);
	struct vmc_reader rd = {0};
	cr_assert_eq(vmc_binds_guest(m, sv[1], &rd, &err), -1);
	cr_assert(strstr(err->msg, "STDIN where FILE 1 of 1 belongs"), "%s", err->msg);
	vs_err_free(&err);
	close(sv[0]);
	cr_assert_eq(vmc_binds_guest(m, sv[1], &rd, &err), -1);
	cr_assert(strstr(err->msg, "closed the connection before FILE 1 of 1"), "%s", err->msg);
	vs_err_free(&err);
	vmc_reader_free(&rd);
	json_decref(m);
	close(sv[1]);
}

/* ---- the OCI request */

static struct vmc_oci_msg round_trip(enum vmc_oci_cmd cmd, bool json, char *const *args,
				     json_t *res)
{
	size_t len;
	vs_err_t err = NULL;
	char *text = vmc_oci_msg_build(cmd, json, args, res, &len, &err);
	cr_assert_not_null(text);
	struct vmc_oci_msg m;
	cr_assert_eq(vmc_oci_msg_parse((const uint8_t *)text, len, &m, &err), 0, "%s: %s", text,
		     err ? err->msg : "");
	free(text);
	return m;
}

static void argv_is(const struct vmc_oci_msg *m, const char *const *want)
{
	int argc;
	vs_err_t err = NULL;
	char **v = vmc_oci_argv(m, "ctr", "/run/r.json", &argc, &err);
	cr_assert_not_null(v);
	int n = 0;
	while (want[n])
		n++;
	cr_assert_eq(argc, n);
	for (int i = 0; i < n; i++)
		cr_assert_str_eq(v[i], want[i]);
	cr_assert_null(v[argc]);
	free(v);
}

Test(vmc_oci, each_command_becomes_the_guest_runtimes)
{
	char *args[] = {"-o", "pid,args", NULL};
	struct vmc_oci_msg m = round_trip(VMC_OCI_PS, false, args, NULL);
	argv_is(&m, (const char *[]){"ps", "--format=table", "ctr", "-o", "pid,args", NULL});
	vmc_oci_msg_release(&m);
	m = round_trip(VMC_OCI_PS, true, NULL, NULL);
	argv_is(&m, (const char *[]){"ps", "--format=json", "ctr", NULL});
	vmc_oci_msg_release(&m);
	m = round_trip(VMC_OCI_PAUSE, false, NULL, NULL);
	argv_is(&m, (const char *[]){"pause", "ctr", NULL});
	vmc_oci_msg_release(&m);
	m = round_trip(VMC_OCI_RESUME, false, NULL, NULL);
	argv_is(&m, (const char *[]){"resume", "ctr", NULL});
	vmc_oci_msg_release(&m);
	m = round_trip(VMC_OCI_STATS, false, NULL, NULL);
	argv_is(&m, (const char *[]){"events", "--stats", "ctr", NULL});
	vmc_oci_msg_release(&m);
	json_t *res = json_pack("{s:{s:I}}", "memory", "limit", (json_int_t)150 << 20);
	m = round_trip(VMC_OCI_UPDATE, false, NULL, res);
	argv_is(&m, (const char *[]){"update", "--resources", "/run/r.json", "ctr", NULL});
	cr_assert_str_eq(m.resources, "{\"memory\":{\"limit\":157286400}}");
	cr_assert_eq(m.memory_limit, 150 << 20);
	vmc_oci_msg_release(&m);
	json_decref(res);
}

Test(vmc_oci, refusals)
{
	static const struct {
		const char *payload, *want;
	} cases[] = {
	    {"[]", "not a JSON object"},
	    {"{\"command\": \"delete\"}", "no such command"},
	    {"{\"command\": \"pause\", \"args\": []}", "pause takes no `args`"},
	    {"{\"command\": \"ps\", \"format\": \"yaml\", \"args\": []}", "format must be"},
	    {"{\"command\": \"ps\", \"format\": \"json\", \"args\": [1]}", "args[0] is not"},
	    {"{\"command\": \"ps\", \"format\": \"json\"}", "args is not an array"},
	    {"{\"command\": \"update\"}", "resources is not an object"},
	    {"{\"command\": \"update\", \"resources\": {\"memory\": {\"limit\": \"1G\"}}}",
	     "memory.limit is not an integer"},
	    {"{\"command\": \"pause\", \"command\": \"ps\"}", "not a JSON object"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vmc_oci_msg m;
		vs_err_t err = NULL;
		cr_assert_eq(vmc_oci_msg_parse((const uint8_t *)cases[i].payload,
					       strlen(cases[i].payload), &m, &err),
			     -1, "%s", cases[i].payload);
		cr_assert(strstr(err->msg, cases[i].want), "%s: %s", cases[i].payload, err->msg);
		cr_assert_null(m.ps_args);
		vs_err_free(&err);
	}
	/* more ps arguments than the limit */
	json_t *a = json_array();
	for (int i = 0; i <= VMC_OCI_MAX_PS_ARGS; i++)
		json_array_append_new(a, json_string("-e"));
	json_t *o = json_pack("{s:s, s:s, s:o}", "command", "ps", "format", "table", "args", a);
	char *text = json_dumps(o, 0);
	struct vmc_oci_msg m;
	vs_err_t err = NULL;
	cr_assert_eq(vmc_oci_msg_parse((const uint8_t *)text, strlen(text), &m, &err), -1);
	cr_assert(strstr(err->msg, "at most 64"), "%s", err->msg);
	vs_err_free(&err);
	free(text);
	json_decref(o);
}

Test(vmc_oci, memory_beyond_the_vm_is_refused)
{
	struct vmc_oci_msg m = {.cmd = VMC_OCI_UPDATE, .memory_limit = (int64_t)4 << 30};
	vs_err_t err = NULL;
	cr_assert_eq(vmc_oci_check_memory(&m, 200u << 20, &err), -1);
	cr_assert(strstr(err->msg, "4096 MiB is more than the microVM's 200 MiB"), "%s", err->msg);
	cr_assert(strstr(err->msg, "fixed when it boots"), "%s", err->msg);
	vs_err_free(&err);
	m.memory_limit = 150 << 20;
	cr_assert_eq(vmc_oci_check_memory(&m, 200u << 20, &err), 0);
	m.memory_limit = -1; /* unlimited: the VM's RAM is the limit anyway */
	cr_assert_eq(vmc_oci_check_memory(&m, 200u << 20, &err), 0);
	m = (struct vmc_oci_msg){.cmd = VMC_OCI_PAUSE};
	cr_assert_eq(vmc_oci_check_memory(&m, 200u << 20, &err), 0);
}
