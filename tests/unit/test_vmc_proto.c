/* The agent protocol's framing (src/vmc/proto.c) without a VM: headers byte for byte,
 * every way a peer's bytes can fail to be a frame, the reader over a socketpair (frames
 * split across reads, several in one read, EOF inside one), which frames the agent takes
 * where (KILL on an exec's connection) and KILL's signal bounds, the EXEC request
 * (exec_msg.c: what the host builds the agent parses into the guest's exec command line,
 * and what it refuses), and the initramfs the host appends the agent to (initrd.c). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "base/util.h"
#include "vmc/exec_msg.h"
#include "vmc/initrd.h"
#include "vmc/proto.h"

static int parse(const uint8_t *b, size_t n, struct vmc_frame *f, size_t *used, char **msg)
{
	vs_err_t err = NULL;
	int rc = vmc_frame_parse(b, n, f, used, &err);
	if (msg)
		*msg = err ? strdup(err->msg) : NULL;
	vs_err_free(&err);
	return rc;
}

Test(vmc_proto, header_layout)
{
	uint8_t h[VMC_HEADER_SIZE];
	vmc_frame_header(h, VMC_STDOUT, 0x01020304);
	uint8_t want[] = {VMC_STDOUT, 0, 0, 0, 4, 3, 2, 1};
	cr_assert_arr_eq(h, want, sizeof(want));
}

Test(vmc_proto, whole_and_partial)
{
	uint8_t b[VMC_HEADER_SIZE + 5];
	vmc_frame_header(b, VMC_STDERR, 5);
	memcpy(b + VMC_HEADER_SIZE, "hello", 5);
	struct vmc_frame f;
	size_t used = 0;
	for (size_t n = 0; n < sizeof(b); n++)
		cr_assert_eq(parse(b, n, &f, &used, NULL), 0, "%zu bytes are not a frame yet", n);
	cr_assert_eq(parse(b, sizeof(b), &f, &used, NULL), 1);
	cr_assert_eq(f.type, VMC_STDERR);
	cr_assert_eq(f.len, 5);
	cr_assert_eq(used, sizeof(b));
	cr_assert_eq(memcmp(f.payload, "hello", 5), 0);
}

Test(vmc_proto, u32_payloads)
{
	uint8_t b[VMC_HEADER_SIZE + 4];
	vmc_frame_header(b, VMC_EXIT, 4);
	b[8] = 143;
	b[9] = b[10] = b[11] = 0;
	struct vmc_frame f;
	size_t used;
	cr_assert_eq(parse(b, sizeof(b), &f, &used, NULL), 1);
	cr_assert_eq(vmc_frame_u32(&f), 143);
}

Test(vmc_proto, resize_payload)
{
	uint8_t b[VMC_HEADER_SIZE + VMC_RESIZE_SIZE];
	vmc_frame_header(b, VMC_RESIZE, VMC_RESIZE_SIZE);
	vmc_resize_payload(b + VMC_HEADER_SIZE, 300, 65535);
	cr_assert_eq(b[8], 300 & 0xff);
	cr_assert_eq(b[9], 300 >> 8);
	struct vmc_frame f;
	size_t used;
	cr_assert_eq(parse(b, sizeof(b), &f, &used, NULL), 1);
	uint16_t rows, cols;
	vmc_frame_resize(&f, &rows, &cols);
	cr_assert_eq(rows, 300);
	cr_assert_eq(cols, 65535);
	cr_assert_str_eq(vmc_type_name(VMC_RESIZE), "RESIZE");
}

/* Which frames the agent takes once the process runs: a signal for an exec'd process comes
 * on its own connection; the container's init gets its signals by a control request, so
 * KILL on main is refused; RESIZE only for a process with a terminal. */
Test(vmc_proto, frames_the_agent_accepts)
{
	struct {
		enum vmc_stream s;
		uint8_t type;
		bool terminal;
		const char *says; /* NULL: accepted */
	} cases[] = {
	    {VMC_STREAM_MAIN, VMC_STDIN, false, NULL},
	    {VMC_STREAM_EXEC, VMC_STDIN, false, NULL},
	    {VMC_STREAM_EXEC, VMC_KILL, false, NULL},
	    {VMC_STREAM_EXEC, VMC_KILL, true, NULL},
	    {VMC_STREAM_MAIN, VMC_KILL, false, "KILL from the host on the main connection"},
	    {VMC_STREAM_MAIN, VMC_KILL, true, "KILL from the host on the main connection"},
	    {VMC_STREAM_MAIN, VMC_RESIZE, true, NULL},
	    {VMC_STREAM_EXEC, VMC_RESIZE, true, NULL},
	    {VMC_STREAM_EXEC, VMC_RESIZE, false, "has no terminal"},
	    {VMC_STREAM_MAIN, VMC_RESIZE, false, "has no terminal"},
	    {VMC_STREAM_EXEC, VMC_EXEC, false, "EXEC from the host on an exec's connection"},
	    {VMC_STREAM_EXEC, VMC_START, false, "START from the host on an exec's"},
	    {VMC_STREAM_EXEC, VMC_OCI, false, "OCI from the host"},
	    {VMC_STREAM_MAIN, VMC_CONFIG, false, "CONFIG from the host"},
	    {VMC_STREAM_MAIN, VMC_FILE, false, "FILE from the host"},
	    {VMC_STREAM_EXEC, VMC_EXIT, false, "EXIT from the host"},
	    {VMC_STREAM_EXEC, VMC_STDOUT, false, "STDOUT from the host"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		vs_err_t err = NULL;
		int rc = vmc_agent_accepts(cases[i].s, cases[i].type, cases[i].terminal, &err);
		if (!cases[i].says) {
			cr_assert_eq(rc, 0, "case %zu: %s", i, err ? err->msg : "");
			cr_assert_null(err);
			continue;
		}
		cr_assert_eq(rc, -1, "case %zu", i);
		cr_assert(err && strstr(err->msg, cases[i].says), "case %zu: %s", i,
			  err ? err->msg : "(no error)");
		vs_err_free(&err);
	}
}

/* KILL's payload is a signal kill(2) takes; anything else is refused, not sent on */
Test(vmc_proto, kill_signal_bounds)
{
	static const struct {
		uint32_t v;
		bool ok;
	} cases[] = {{15, true},
		     {1, true},
		     {VMC_MAX_SIGNAL, true},
		     {0, false},
		     {VMC_MAX_SIGNAL + 1, false},
		     {0x80000000u, false},
		     {0xffffffffu, false}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t b[VMC_HEADER_SIZE + 4];
		vmc_frame_header(b, VMC_KILL, 4);
		for (int k = 0; k < 4; k++)
			b[VMC_HEADER_SIZE + k] = (uint8_t)(cases[i].v >> (8 * k));
		struct vmc_frame f;
		size_t used;
		cr_assert_eq(parse(b, sizeof(b), &f, &used, NULL), 1);
		int sig = -1;
		vs_err_t err = NULL;
		int rc = vmc_frame_signal(&f, &sig, &err);
		if (cases[i].ok) {
			cr_assert_eq(rc, 0, "case %zu", i);
			cr_assert_eq(sig, (int)cases[i].v);
		} else {
			cr_assert_eq(rc, -1, "case %zu", i);
			cr_assert(err && strstr(err->msg, "KILL of signal"), "case %zu", i);
			cr_assert_eq(sig, -1, "case %zu: *sig untouched", i);
		}
		vs_err_free(&err);
	}
}

Test(vmc_proto, bad_frames)
{
	struct {
		uint8_t hdr[VMC_HEADER_SIZE];
		const char *says;
	} cases[] = {
	    {{0, 0, 0, 0, 0, 0, 0, 0}, "unknown frame type 0"},
	    {{VMC_TYPE_MAX + 1, 0, 0, 0, 0, 0, 0, 0}, "unknown frame type"},
	    {{VMC_STDOUT, 1, 0, 0, 0, 0, 0, 0}, "reserved bytes"},
	    {{VMC_STDOUT, 0, 0, 0, 1, 0, 0x10, 0}, "at most"},
	    {{VMC_STDOUT, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, "at most"},
	    {{VMC_EXIT, 0, 0, 0, 3, 0, 0, 0}, "must be 4"},
	    {{VMC_KILL, 0, 0, 0, 5, 0, 0, 0}, "must be 4"},
	    {{VMC_RESIZE, 0, 0, 0, 2, 0, 0, 0}, "must be 4"},
	    {{VMC_RESIZE, 0, 0, 0, 8, 0, 0, 0}, "must be 4"},
	    {{VMC_CREATED, 0, 0, 0, 1, 0, 0, 0}, "must be 0"},
	    {{VMC_OK, 0, 0, 0, 1, 0, 0, 0}, "must be 0"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vmc_frame f;
		size_t used;
		char *msg = NULL;
		cr_assert_eq(parse(cases[i].hdr, VMC_HEADER_SIZE, &f, &used, &msg), -1, "case %zu",
			     i);
		cr_assert(msg && strstr(msg, cases[i].says), "case %zu: %s", i, msg);
		free(msg);
	}
}

Test(vmc_proto, reader_over_a_socket)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	vs_err_t err = NULL;
	cr_assert_eq(vmc_send(sv[0], VMC_CREATED, NULL, 0, &err), 0);
	cr_assert_eq(vmc_send(sv[0], VMC_STDOUT, "abc", 3, &err), 0);
	cr_assert_eq(vmc_send_u32(sv[0], VMC_EXIT, 7, &err), 0);
	/* a frame split in two writes */
	uint8_t h[VMC_HEADER_SIZE];
	vmc_frame_header(h, VMC_ERROR, 4);
	cr_assert_eq(write(sv[0], h, 5), 5);
	struct vmc_reader r = {0};
	struct vmc_frame f;
	cr_assert_eq(vmc_read_frame(sv[1], &r, &f, &err), 1);
	cr_assert_eq(f.type, VMC_CREATED);
	cr_assert(vmc_reader_ready(&r), "the next frames came in the same read");
	cr_assert_eq(vmc_read_frame(sv[1], &r, &f, &err), 1);
	cr_assert_eq(f.type, VMC_STDOUT);
	cr_assert_eq(memcmp(f.payload, "abc", 3), 0);
	cr_assert_eq(vmc_read_frame(sv[1], &r, &f, &err), 1);
	cr_assert_eq(vmc_frame_u32(&f), 7);
	cr_assert_eq(write(sv[0], h + 5, 3), 3);
	cr_assert_eq(write(sv[0], "oops", 4), 4);
	cr_assert_eq(vmc_read_frame(sv[1], &r, &f, &err), 1);
	cr_assert_eq(f.type, VMC_ERROR);
	cr_assert_eq(memcmp(f.payload, "oops", 4), 0);
	/* EOF between frames is a clean end; inside one it is an error */
	cr_assert_eq(write(sv[0], h, 3), 3);
	close(sv[0]);
	cr_assert_eq(vmc_read_frame(sv[1], &r, &f, &err), -1);
	cr_assert(strstr(err->msg, "ended inside a frame"), "%s", err->msg);
	vs_err_free(&err);
	vmc_reader_free(&r);
	close(sv[1]);
}

Test(vmc_proto, reader_clean_eof_and_bad_frame)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct vmc_reader r = {0};
	struct vmc_frame f;
	vs_err_t err = NULL;
	uint8_t bad[VMC_HEADER_SIZE] = {99};
	cr_assert_eq(write(sv[0], bad, sizeof(bad)), (ssize_t)sizeof(bad));
	cr_assert_eq(vmc_read_frame(sv[1], &r, &f, &err), -1);
	cr_assert(strstr(err->msg, "unknown frame type 99"), "%s", err->msg);
	vs_err_free(&err);
	vmc_reader_free(&r);
	close(sv[0]);
	close(sv[1]);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[0]);
	cr_assert_eq(vmc_read_frame(sv[1], &r, &f, &err), 0);
	vmc_reader_free(&r);
	close(sv[1]);
}

static int exec_parse(const char *json, struct vmc_exec_msg *m, char **msg)
{
	vs_err_t err = NULL;
	int rc = vmc_exec_msg_parse((const uint8_t *)json, strlen(json), m, &err);
	if (msg)
		*msg = err ? strdup(err->msg) : NULL;
	vs_err_free(&err);
	return rc;
}

Test(vmc_exec_msg, command_round_trip)
{
	char *opts[] = {"--env=A=b c", "--cwd=/tmp", "--no-new-privs", NULL};
	char *cmd[] = {"sh", "-c", "echo \"hi\"; exit 5", NULL};
	vs_err_t err = NULL;
	size_t len = 0;
	char *payload = vmc_exec_msg_build(opts, cmd, NULL, false, &len, &err);
	cr_assert(payload, "%s", err ? err->msg : "");
	cr_assert_eq(len, strlen(payload));
	struct vmc_exec_msg m;
	cr_assert_eq(vmc_exec_msg_parse((uint8_t *)payload, len, &m, &err), 0, "%s",
		     err ? err->msg : "");
	cr_assert_null(m.process);
	int argc = 0;
	char **argv = vmc_exec_argv(&m, "ctr", "/run/p.pid", "/run/p.json", NULL, &argc, &err);
	const char *want[] = {"exec",	     "--detach",   "--pid-file",	 "/run/p.pid",
			      "--env=A=b c", "--cwd=/tmp", "--no-new-privs",	 "ctr",
			      "sh",	     "-c",	   "echo \"hi\"; exit 5"};
	cr_assert_eq(argc, 11);
	for (int i = 0; i < argc; i++)
		cr_assert_str_eq(argv[i], want[i], "argv[%d]", i);
	cr_assert_null(argv[argc]);
	free(argv);
	vmc_exec_msg_release(&m);
	free(payload);
}

Test(vmc_exec_msg, process_round_trip)
{
	json_t *proc =
	    json_pack("{s:[s,s], s:s, s:b}", "args", "cat", "-", "cwd", "/", "terminal", 0);
	char *none[] = {NULL};
	vs_err_t err = NULL;
	size_t len = 0;
	char *payload = vmc_exec_msg_build(none, NULL, proc, false, &len, &err);
	cr_assert(payload);
	struct vmc_exec_msg m;
	cr_assert_eq(vmc_exec_msg_parse((uint8_t *)payload, len, &m, &err), 0, "%s",
		     err ? err->msg : "");
	cr_assert(m.process);
	json_t *back = json_loads(m.process, 0, NULL);
	cr_assert(json_equal(back, proc), "the guest writes the same process.json");
	int argc = 0;
	char **argv = vmc_exec_argv(&m, "ctr", "/run/p.pid", "/run/p.json", NULL, &argc, &err);
	cr_assert_eq(argc, 7);
	cr_assert_str_eq(argv[4], "--process");
	cr_assert_str_eq(argv[5], "/run/p.json");
	cr_assert_str_eq(argv[6], "ctr", "the id last: the process has the command");
	free(argv);
	json_decref(back);
	json_decref(proc);
	vmc_exec_msg_release(&m);
	free(payload);
}

Test(vmc_exec_msg, terminal)
{
	char *none[] = {NULL}, *cmd[] = {"sh", NULL};
	vs_err_t err = NULL;
	size_t len = 0;
	char *payload = vmc_exec_msg_build(none, cmd, NULL, true, &len, &err);
	struct vmc_exec_msg m;
	cr_assert_eq(vmc_exec_msg_parse((uint8_t *)payload, len, &m, &err), 0, "%s",
		     err ? err->msg : "");
	cr_assert(m.terminal);
	int argc = 0;
	char **argv =
	    vmc_exec_argv(&m, "ctr", "/run/p.pid", "/run/p.json", "/run/c.sock", &argc, &err);
	const char *want[] = {"exec",	     "--detach", "--pid-file",
			      "/run/p.pid",  "--tty",	 "--console-socket",
			      "/run/c.sock", "ctr",	 "sh"};
	cr_assert_eq(argc, 9);
	for (int i = 0; i < argc; i++)
		cr_assert_str_eq(argv[i], want[i], "argv[%d]", i);
	free(argv);
	vmc_exec_msg_release(&m);
	free(payload);

	/* a process carries its own terminal: no --tty, the socket all the same */
	json_t *proc = json_pack("{s:[s], s:b}", "args", "sh", "terminal", 1);
	payload = vmc_exec_msg_build(none, NULL, proc, true, &len, &err);
	cr_assert_eq(vmc_exec_msg_parse((uint8_t *)payload, len, &m, &err), 0, "%s",
		     err ? err->msg : "");
	argv = vmc_exec_argv(&m, "ctr", "/run/p.pid", "/run/p.json", "/run/c.sock", &argc, &err);
	cr_assert_eq(argc, 9);
	cr_assert_str_eq(argv[4], "--process");
	cr_assert_str_eq(argv[6], "--console-socket");
	cr_assert_str_eq(argv[7], "/run/c.sock");
	cr_assert_str_eq(argv[8], "ctr");
	free(argv);
	vmc_exec_msg_release(&m);
	free(payload);
	json_decref(proc);
}

Test(vmc_exec_msg, refused)
{
	struct {
		const char *json, *says;
	} cases[] = {
	    {"[]", "not a JSON object"},
	    {"{\"options\": [], \"command\": [\"x\"", "not a JSON object"},
	    {"{\"command\": [\"x\"]}", "options is not an array"},
	    {"{\"options\": [], \"command\": \"x\"}", "command is not an array"},
	    {"{\"options\": [], \"command\": [1]}", "command[0] is not a string"},
	    {"{\"options\": [], \"command\": [\"a\\u0000b\"]}", "not a JSON object"},
	    {"{\"options\": [], \"command\": []}", "neither"},
	    {"{\"options\": [], \"command\": [\"x\"], \"process\": {}}", "both"},
	    {"{\"options\": [], \"command\": [], \"process\": []}", "process is not an object"},
	    {"{\"options\": [\"--detach\"], \"command\": [\"x\"]}", "`--detach`"},
	    {"{\"options\": [\"--pid-file=/etc/x\"], \"command\": [\"x\"]}", "`--pid-file"},
	    {"{\"options\": [\"--process=/x\"], \"command\": [\"x\"]}", "`--process"},
	    {"{\"options\": [\"--tty\"], \"command\": [\"x\"]}", "`--tty`"},
	    {"{\"options\": [\"--console-socket=/s\"], \"command\": [\"x\"]}", "console"},
	    {"{\"options\": [\"--preserve-fds=3\"], \"command\": [\"x\"]}", "preserve"},
	    {"{\"options\": [\"-d\"], \"command\": [\"x\"]}", "`-d`"},
	    {"{\"options\": [\"--\"], \"command\": [\"x\"]}", "`--`"},
	    {"{\"options\": [\"ctr2\"], \"command\": [\"x\"]}", "`ctr2`"},
	    {"{\"options\": [], \"command\": [\"x\"], \"terminal\": 1}", "not a boolean"},
	    {"{\"options\": [], \"command\": [], \"process\": {}, \"terminal\": true}", "differ"},
	    {"{\"options\": [], \"command\": [], \"process\": {\"terminal\": true}}", "differ"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vmc_exec_msg m;
		char *msg = NULL;
		cr_assert_eq(exec_parse(cases[i].json, &m, &msg), -1, "case %zu", i);
		cr_assert(msg && strstr(msg, cases[i].says), "case %zu: %s", i, msg);
		cr_assert_null(m.options, "case %zu: nothing kept", i);
		free(msg);
	}
	/* a prefix of a reserved name is another option */
	struct vmc_exec_msg m;
	cr_assert_eq(exec_parse("{\"options\": [\"--detached\"], \"command\": [\"x\"]}", &m, NULL),
		     0);
	vmc_exec_msg_release(&m);
}

Test(vmc_exec_msg, too_many_args)
{
	size_t n = VMC_EXEC_MAX_ARGS + 1;
	char **cmd = calloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		cmd[i] = "x";
	char *none[] = {NULL};
	vs_err_t err = NULL;
	size_t len;
	char *payload = vmc_exec_msg_build(none, cmd, NULL, false, &len, &err);
	struct vmc_exec_msg m;
	cr_assert_eq(vmc_exec_msg_parse((uint8_t *)payload, len, &m, &err), -1);
	cr_assert(strstr(err->msg, "at most 1024"), "%s", err->msg);
	vs_err_free(&err);
	cmd[VMC_EXEC_MAX_ARGS] = NULL;
	free(payload);
	payload = vmc_exec_msg_build(none, cmd, NULL, false, &len, &err);
	cr_assert_eq(vmc_exec_msg_parse((uint8_t *)payload, len, &m, &err), 0, "exactly the most");
	vmc_exec_msg_release(&m);
	free(payload);
	free(cmd);
}

Test(vmc_proto, exec_frame)
{
	uint8_t b[VMC_HEADER_SIZE + 2];
	vmc_frame_header(b, VMC_EXEC, 2);
	memcpy(b + VMC_HEADER_SIZE, "{}", 2);
	struct vmc_frame f;
	size_t used;
	cr_assert_eq(parse(b, sizeof(b), &f, &used, NULL), 1);
	cr_assert_eq(f.type, VMC_EXEC);
	cr_assert_str_eq(vmc_type_name(VMC_EXEC), "EXEC");
	cr_assert_eq(VMC_EXEC, 11, "the wire number docs/vm-containers.md gives");
}

Test(vmc_initrd, agent_appended_as_newc)
{
	char dir[] = "/tmp/vmc-initrd-XXXXXX";
	cr_assert(mkdtemp(dir));
	char base[64], agent[64], out[64];
	snprintf(base, sizeof(base), "%s/base", dir);
	snprintf(agent, sizeof(agent), "%s/agent", dir);
	snprintf(out, sizeof(out), "%s/out", dir);
	vs_err_t err = NULL;
	cr_assert_eq(vs_write_file(base, "BASE!", 5, &err), 0); /* not 4-aligned */
	cr_assert_eq(vs_write_file(agent, "\177ELF-agent", 10, &err), 0);
	cr_assert_eq(vmc_initrd_write(base, agent, out, &err), 0, "%s", err ? err->msg : "");
	char *data = NULL;
	size_t n = 0;
	cr_assert_eq(vs_read_file(out, 1 << 20, &data, &n, &err), 0);
	cr_assert_eq(memcmp(data, "BASE!\0\0\0", 8), 0, "the base, zero-padded to 4 bytes");
	cr_assert_eq(memcmp(data + 8, "070701", 6), 0);
	/* mode 0100755, filesize 10, namesize 7 ("vessel" + NUL) */
	cr_assert_eq(memcmp(data + 8 + 14, "000081ED", 8), 0);
	cr_assert_eq(memcmp(data + 8 + 54, "0000000A", 8), 0);
	cr_assert_eq(memcmp(data + 8 + 94, "00000007", 8), 0);
	cr_assert_eq(memcmp(data + 8 + 110, "vessel\0", 7), 0);
	/* header + name = 117, padded to 120 */
	cr_assert_eq(memcmp(data + 8 + 120, "\177ELF-agent", 10), 0);
	cr_assert_eq(memcmp(data + 8 + 132, "070701", 6), 0, "the trailer, 4-aligned");
	cr_assert(memmem(data, n, "TRAILER!!!", 10));
	cr_assert_eq(n % 4, 0);
	free(data);
	cr_assert_eq(vmc_initrd_write(base, "/nonexistent/agent", out, &err), -1);
	cr_assert(strstr(err->msg, "VESSEL_AGENT"), "%s", err->msg);
	cr_assert_eq(access(out, F_OK), -1, "a failed write leaves no file");
	vs_err_free(&err);
	unlink(base);
	unlink(agent);
	rmdir(dir);
}
