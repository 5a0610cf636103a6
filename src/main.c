/* vessel: argument dispatch only. Each command lives in its area. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/globals.h"
#include "base/log.h"
#include "oci/oci.h"
#include "oci/selfexe.h"
#include "vmm/vmm.h"

struct command {
	const char *name;
	oci_command_fn fn;
	const char *help;
	/* starts container processes: runs from a sealed copy of the binary */
	bool sealed;
};

static const struct command commands[] = {
	{"create", oci_cmd_create, "create a container (its process waits for start)", true},
	{"start", oci_cmd_start, "start the process of a created container"},
	{"run", oci_cmd_run, "create, start and wait for a container", true},
	{"state", oci_cmd_state, "print a container's OCI state JSON"},
	{"kill", oci_cmd_kill, "send a signal to a container's init"},
	{"delete", oci_cmd_delete, "delete a container and its resources"},
	{"exec", oci_cmd_exec, "run a new process in a running container", true},
	{"ps", oci_cmd_ps, "show the processes of a container"},
	{"pause", oci_cmd_pause, "freeze every process of a container"},
	{"resume", oci_cmd_resume, "thaw a paused container"},
	{"update", oci_cmd_update, "change a running container's resource limits"},
	{"events", oci_cmd_events, "print a container's cgroup stats"},
	{"list", oci_cmd_list, "list containers"},
	{"spec", oci_cmd_spec, "write a default config.json"},
	{"features", oci_cmd_features, "print the runtime features JSON"},
	{"vm", vmm_main, "run a microVM (vessel vm run --help)"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: vessel [--root DIR] [--log FILE] [--log-format text|json] [--debug]\n"
		   "              [--systemd-cgroup] COMMAND [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\n'vessel COMMAND --help' shows a command's options.\n");
}

enum { OPT_ROOT = 256, OPT_LOG, OPT_LOG_FORMAT, OPT_SYSTEMD_CGROUP, OPT_CRIU, OPT_ROOTLESS };

int main(int argc, char **argv)
{
	struct vs_globals g = {.root = "/run/vessel"};
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
		if (commands[i].sealed && selfexe_reexec_sealed(argv, &err) < 0) {
			vs_report(err);
			return 1;
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
