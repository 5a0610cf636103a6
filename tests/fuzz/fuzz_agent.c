/* The agent protocol both ways: whatever a hostile guest (or a confused host) writes must
 * give frames or a clear error, never a crash, leak or hang. The bytes go through the
 * pure parser frame after frame, then through the reader the host and agent use, over a
 * pipe in arbitrary splits. RESIZE frames are decoded; every frame goes through the rule
 * of which the agent takes where (KILL: an exec's, with its signal in bounds). Every EXEC
 * frame's payload goes through the agent's parser of the request (exec_msg.c) and, when accepted,
 * the command line it becomes, whose reserved options must be the agent's own. OCI payloads (ps,
 * pause, resume, stats, update) go through their parser, the command line they become and the
 * memory check; CONFIG payloads through the agent's reading of the bind mounts' counts and of "net"
 * (the guest's interfaces, addresses and routes: net_msg.c), every value it accepts
 * within the bounds the guest's netlink requests rely on. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "vmc/exec_msg.h"
#include "vmc/mounts.h"
#include "vmc/net_msg.h"
#include "vmc/ops_msg.h"
#include "vmc/proto.h"

static bool is_option(const char *arg, const char *name)
{
	size_t n = strlen(name);
	return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

static void exec_request(const struct vmc_frame *f)
{
	static char id[] = "ctr";
	struct vmc_exec_msg m;
	vs_err_t err = NULL;
	if (vmc_exec_msg_parse(f->payload, f->len, &m, &err) < 0) {
		if (!err || !err->msg[0])
			__builtin_trap(); /* a refusal says why */
		vs_err_free(&err);
		return;
	}
	int argc = 0;
	char **argv =
	    vmc_exec_argv(&m, id, "/run/x.pid", "/run/x.json", "/run/x.sock", &argc, &err);
	if (!argv) {
		vs_err_free(&err);
		vmc_exec_msg_release(&m);
		return;
	}
	/* the agent's own --detach, --pid-file, --process, --tty and --console-socket come
	 * first; the host's options after them never repeat those, and the id follows the
	 * options */
	int i = m.process ? 6 : 4;
	if (m.terminal)
		i += m.process ? 2 : 3;
	if (argc < i + 1 || strcmp(argv[1], "--detach") || strcmp(argv[3], "/run/x.pid"))
		__builtin_trap();
	if (m.terminal && strcmp(argv[i - 1], "/run/x.sock"))
		__builtin_trap();
	for (; i < argc && argv[i] != id; i++)
		if (is_option(argv[i], "--detach") || is_option(argv[i], "--pid-file") ||
		    is_option(argv[i], "--process") || is_option(argv[i], "--tty") ||
		    is_option(argv[i], "--console-socket") || argv[i][0] != '-')
			__builtin_trap();
	if (i == argc || argv[argc] != NULL)
		__builtin_trap();
	free(argv);
	vmc_exec_msg_release(&m);
}

static void config_net(const struct vmc_frame *f)
{
	json_t *msg = json_loadb((const char *)f->payload, f->len, 0, NULL);
	json_t *net = json_object_get(msg, "net");
	struct vmc_net n;
	vs_err_t err = NULL;
	if (net && vmc_net_from_json(net, &n, &err) == 0) {
		if (n.nifaces > VMC_NET_MAX_IFACES || n.nroutes > VMC_NET_MAX_ROUTES)
			__builtin_trap();
		for (size_t i = 0; i < n.nifaces; i++) {
			const struct vmc_net_iface *x = &n.ifaces[i];
			if (x->naddrs > VMC_NET_MAX_ADDRS || !x->name[0] || (x->mac[0] & 1) ||
			    x->mtu < VMC_NET_MIN_MTU || x->mtu > VMC_NET_MAX_MTU)
				__builtin_trap();
			for (size_t a = 0; a < x->naddrs; a++)
				if (x->addrs[a].prefix > (x->addrs[a].family == AF_INET ? 32 : 128))
					__builtin_trap();
		}
		for (size_t r = 0; r < n.nroutes; r++)
			if (n.routes[r].iface >= n.nifaces)
				__builtin_trap();
		json_decref(vmc_net_to_json(&n));
	} else if (net && (!err || !err->msg[0])) {
		__builtin_trap(); /* a refusal says why */
	}
	vs_err_free(&err);
	json_decref(msg);
}

static void oci_request(const struct vmc_frame *f)
{
	static char id[] = "ctr", res[] = "/run/r.json";
	struct vmc_oci_msg m;
	vs_err_t err = NULL;
	if (vmc_oci_msg_parse(f->payload, f->len, &m, &err) < 0) {
		if (!err || !err->msg[0])
			__builtin_trap(); /* a refusal says why */
		vs_err_free(&err);
		return;
	}
	if (vmc_oci_check_memory(&m, 256u << 20, &err) < 0)
		vs_err_free(&err);
	int argc = 0;
	char **argv = vmc_oci_argv(&m, id, res, &argc, &err);
	if (!argv) {
		vs_err_free(&err);
		vmc_oci_msg_release(&m);
		return;
	}
	/* one of the five commands, then the agent's own options, then the id: whatever the
	 * host sent, nothing of its lands before the id (ps's arguments follow it) */
	static const char *const first[] = {"ps", "pause", "resume", "events", "update"};
	if (argc < 2 || argv[argc] != NULL || strcmp(argv[0], first[m.cmd]))
		__builtin_trap();
	int at = 1;
	while (at < argc && argv[at] != id)
		at++;
	if (at == argc || (m.cmd == VMC_OCI_UPDATE && (at != 3 || argv[2] != res)))
		__builtin_trap();
	if (m.cmd != VMC_OCI_PS && at != argc - 1)
		__builtin_trap();
	if ((m.cmd == VMC_OCI_UPDATE) != (m.resources != NULL))
		__builtin_trap();
	free(argv);
	vmc_oci_msg_release(&m);
}

/* Where the agent would take the frame once the process runs: KILL only on an exec's
 * connection and only with a signal kill(2) takes, RESIZE only with a terminal, nothing
 * but those and STDIN; a refusal says why. */
static void placement(const struct vmc_frame *f)
{
	for (int s = VMC_STREAM_MAIN; s <= VMC_STREAM_EXEC; s++) {
		for (int terminal = 0; terminal <= 1; terminal++) {
			vs_err_t err = NULL;
			if (vmc_agent_accepts((enum vmc_stream)s, f->type, terminal, &err) < 0) {
				if (!err || !err->msg[0])
					__builtin_trap();
				vs_err_free(&err);
				continue;
			}
			if (err)
				__builtin_trap();
			if (f->type == VMC_KILL && s != VMC_STREAM_EXEC)
				__builtin_trap();
			if (f->type == VMC_RESIZE && !terminal)
				__builtin_trap();
			if (f->type != VMC_STDIN && f->type != VMC_KILL && f->type != VMC_RESIZE)
				__builtin_trap();
			int sig = 0;
			if (f->type == VMC_KILL && vmc_frame_signal(f, &sig, &err) == 0 &&
			    (sig < 1 || sig > VMC_MAX_SIGNAL))
				__builtin_trap();
			vs_err_free(&err);
		}
	}
}

static void config_counts(const struct vmc_frame *f)
{
	json_t *msg = json_loadb((const char *)f->payload, f->len, 0, NULL);
	size_t shares = 99, files = 99;
	vs_err_t err = NULL;
	if (vmc_binds_counts(msg, &shares, &files, &err) == 0 &&
	    (shares > VMC_MAX_SHARES || files > VMC_MAX_FILES))
		__builtin_trap();
	vs_err_free(&err);
	json_decref(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;
	for (;;) {
		struct vmc_frame f;
		size_t used = 0;
		vs_err_t err = NULL;
		int rc = vmc_frame_parse(data + off, size - off, &f, &used, &err);
		vs_err_free(&err);
		if (rc <= 0)
			break;
		if (f.type == VMC_EXIT || f.type == VMC_KILL)
			(void)vmc_frame_u32(&f);
		if (f.type == VMC_RESIZE) {
			uint16_t rows, cols;
			vmc_frame_resize(&f, &rows, &cols);
		}
		if (f.type == VMC_EXEC)
			exec_request(&f);
		if (f.type == VMC_OCI)
			oci_request(&f);
		if (f.type == VMC_CONFIG) {
			config_net(&f);
			config_counts(&f);
		}
		placement(&f);
		(void)vmc_type_name(f.type);
		off += used;
	}
	/* the first byte picks the write size; the rest is the stream, through a pipe
	 * (which merges small writes: 64 KiB fit, so one thread can write, then read) */
	if (size < 1 || size > 60000)
		return 0;
	size_t chunk = (size_t)data[0] + 1;
	int sv[2];
	if (pipe(sv) < 0)
		return 0;
	for (size_t o = 1; o < size; o += chunk) {
		size_t n = size - o < chunk ? size - o : chunk;
		if (write(sv[1], data + o, n) != (ssize_t)n)
			break;
	}
	close(sv[1]);
	struct vmc_reader r = {0};
	for (;;) {
		struct vmc_frame f;
		vs_err_t err = NULL;
		int rc = vmc_read_frame(sv[0], &r, &f, &err);
		vs_err_free(&err);
		if (rc <= 0)
			break;
	}
	vmc_reader_free(&r);
	close(sv[0]);
	return 0;
}
