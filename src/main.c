/* vessel: argument dispatch only. Each command lives in its area. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "base/globals.h"
#include "base/log.h"
#include "base/util.h"
#include "engine/engine.h"
#include "image/image.h"
#include "jail/jail.h"
#include "network/network.h"
#include "oci/oci.h"
#include "oci/rootless.h"
#include "oci/selfexe.h"
#include "vmc/vmc.h"
#include "vmm/vmm.h"

/* network_main reports its own errors (the engine calls it the same way) */
static int network_cmd(const struct vs_globals *g, int argc, char **argv, vs_err_t *err)
{
	(void)err;
	return network_main(argc, argv, g);
}

struct command {
	const char *name;
	oci_command_fn fn;
	const char *help;
	/* what `vessel NAME --help` prints; NULL: the command answers --help itself */
	const char *usage;
	/* starts container processes: runs from a sealed copy of the binary */
	bool sealed;
	/* needs no state root (a rootless caller without XDG_RUNTIME_DIR may still run it) */
	bool stateless;
};

static const struct command commands[] = {
	{"create", oci_cmd_create, "create a container (its process waits for start)", NULL, true},
	{"start", oci_cmd_start, "start the process of a created container", "ID"},
	{"run", oci_cmd_run, "create, start and wait for a container", NULL, true},
	{"state", oci_cmd_state, "print a container's OCI state JSON", "ID"},
	{"kill", oci_cmd_kill, "send a signal to a container's init", "[--all] ID [SIGNAL]"},
	{"delete", oci_cmd_delete, "delete a container and its resources", "[--force] ID"},
	{"exec", oci_cmd_exec, "run a new process in a running container", NULL, true},
	{"ps", oci_cmd_ps, "show the processes of a container",
	 "[--format table|json] ID [PS_ARGS...]"},
	{"pause", oci_cmd_pause, "freeze every process of a container", "ID"},
	{"resume", oci_cmd_resume, "thaw a paused container", "ID"},
	{"update", oci_cmd_update, "change a running container's resource limits",
	 "[--resources FILE|-] [--memory N] [--cpu-quota N] ... ID"},
	{"events", oci_cmd_events, "print a container's cgroup stats",
	 "[--stats] [--interval 5s] ID"},
	{"list", oci_cmd_list, "list containers", "[--format table|json] [--quiet]"},
	{"spec", oci_cmd_spec, "write a default config.json", "[--bundle DIR] [--rootless]",
	 false, true},
	{"features", oci_cmd_features, "print the runtime features JSON", NULL, false, true},
	{"vm", vmm_main, "run a microVM (vessel vm run --help)", NULL, false, true},
	{"image", image_main, "load, list and mount images (vessel image --help)", NULL, false,
	 true},
	{"jail", jail_main, "run a VMM jailed as Firecracker's jailer does (vessel jail --help)", NULL, false, true},
	{"network", network_cmd, "create, list and remove container networks (CNI)", NULL, false,
	 true},
	{"agent", vmc_agent_main, "the guest side of a VM-isolated container (a microVM's init)",
	 NULL, false, true},
	{"container", engine_main, "run containers from images (vessel container --help)", NULL},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: vessel [--root DIR] [--log FILE] [--log-format text|json] [--debug]\n"
		   "              [--systemd-cgroup] COMMAND [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\n'vessel COMMAND --help' shows a command's options.\n");
}

/* runc answers `COMMAND --help` anywhere among the command's leading options */
static bool asks_for_help(int argc, char **argv)
{
	for (int i = 1; i < argc && argv[i][0] == '-' && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	return false;
}

enum { OPT_ROOT = 256, OPT_LOG, OPT_LOG_FORMAT, OPT_SYSTEMD_CGROUP, OPT_CRIU, OPT_ROOTLESS };

int main(int argc, char **argv)
{
	struct vs_globals g = {0};
	cleanup_free char *default_root = NULL;
	const char *log_format = "text";
	static const struct option opts[] = {
		{"root", required_argument, NULL, OPT_ROOT},
		{"log", required_argument, NULL, OPT_LOG},
		{"log-format", required_argument, NULL, OPT_LOG_FORMAT},
		{"debug", no_argument, NULL, 'D'},
		{"systemd-cgroup", no_argument, NULL, OPT_SYSTEMD_CGROUP},
		/* accepted for runc compatibility; they change nothing here */
		{"criu", required_argument, NULL, OPT_CRIU},
		{"rootless", required_argument, NULL, OPT_ROOTLESS},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'v'},
		{0},
	};
	int c;
	/* '+' stops at the command name: what follows belongs to the command */
	while ((c = getopt_long(argc, argv, "+hv", opts, NULL)) != -1) {
		switch (c) {
		case OPT_ROOT:
			g.root = optarg;
			break;
		case OPT_LOG:
			g.log = optarg;
			break;
		case OPT_LOG_FORMAT:
			log_format = optarg;
			break;
		case 'D':
			g.debug = true;
			break;
		case OPT_SYSTEMD_CGROUP:
			g.systemd_cgroup = true;
			break;
		case OPT_CRIU:
		case OPT_ROOTLESS:
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'v':
			printf("vessel version %s\nspec: 1.2.0\n", VESSEL_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}

	/* the name podman's --runtime or containerd's BinaryName picks the level with */
	const char *self = strrchr(argv[0], '/');
	g.isolation_vm = strcmp(self ? self + 1 : argv[0], "vessel-vm") == 0;

	cleanup_err vs_err_t err = NULL;
	if (strcmp(log_format, "text") != 0 && strcmp(log_format, "json") != 0) {
		vs_err(&err, 0, "--log-format: must be text or json, not `%s`", log_format);
		vs_report(err);
		return 2;
	}
	g.log_json = strcmp(log_format, "json") == 0;
	if (vs_log_open(g.log, g.log_json, g.debug, &err) < 0) {
		vs_report(err);
		return 1;
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const char *name = argv[optind];
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, name) != 0)
			continue;
		if (commands[i].usage && asks_for_help(argc - optind, argv + optind)) {
			printf("usage: vessel %s %s\n\n%s\n", name, commands[i].usage,
			       commands[i].help);
			return 0;
		}
		/* the sealed view has no path: where the images and the agent are is ours */
		char exe[4096];
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (commands[i].sealed && n > 0 && !selfexe_is_sealed()) {
			exe[n] = '\0';
			setenv("VESSEL_EXE", exe, 0);
		}
		if (commands[i].sealed && selfexe_reexec_sealed(argv, &err) < 0) {
			vs_report(err);
			return 1;
		}
		if (!g.root && !commands[i].stateless) {
			if (rootless_state_root(&default_root, &err) < 0) {
				vs_report(err);
				return 1;
			}
			g.root = default_root;
		}
		/* getopt state is global: let the command parse its own argv afresh */
		int cargc = argc - optind;
		char **cargv = argv + optind;
		optind = 0;
		int rc = commands[i].fn(&g, cargc, cargv, &err);
		if (rc < 0) {
			vs_report(err);
			return 1;
		}
		return rc;
	}
	vs_err(&err, 0, "unknown command `%s` (see vessel --help)", name);
	vs_report(err);
	return 2;
}
