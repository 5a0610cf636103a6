#include "oci/create_args.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The options create and run share, runc's names. */
enum { OPT_BUNDLE = 'b', OPT_PID_FILE = 256, OPT_CONSOLE_SOCKET, OPT_NO_PIVOT, OPT_PRESERVE_FDS,
       OPT_NO_NEW_KEYRING, OPT_DETACH = 'd', OPT_KEEP, OPT_NO_SUBREAPER };

static const struct option create_opts[] = {
	{"bundle", required_argument, NULL, OPT_BUNDLE},
	{"pid-file", required_argument, NULL, OPT_PID_FILE},
	{"console-socket", required_argument, NULL, OPT_CONSOLE_SOCKET},
	{"no-pivot", no_argument, NULL, OPT_NO_PIVOT},
	{"preserve-fds", required_argument, NULL, OPT_PRESERVE_FDS},
	{"no-new-keyring", no_argument, NULL, OPT_NO_NEW_KEYRING},
	{"detach", no_argument, NULL, OPT_DETACH},
	{"keep", no_argument, NULL, OPT_KEEP},
	{"no-subreaper", no_argument, NULL, OPT_NO_SUBREAPER},
	{"help", no_argument, NULL, 'h'},
	{0},
};

int create_args_parse(const char *cmd, int argc, char **argv, struct create_args *a,
			  vs_err_t *err)
{
	const char *usage = "[--bundle DIR] [--pid-file FILE] [--console-socket SOCK] "
			    "[--no-pivot] [--preserve-fds N]%s ID";
	const char *extra = strcmp(cmd, "run") == 0 ? " [--detach] [--keep]" : "";
	memset(a, 0, sizeof(*a));
	a->o.console_fd = -1;
	const char *bundle = ".";
	int c;
	while ((c = getopt_long(argc, argv, "+b:dh", create_opts, NULL)) != -1) {
		switch (c) {
		case OPT_BUNDLE:
			bundle = optarg;
			break;
		case OPT_PID_FILE:
			a->o.pid_file = optarg;
			break;
		case OPT_CONSOLE_SOCKET:
			a->o.console_socket = optarg;
			break;
		case OPT_NO_PIVOT:
			a->o.no_pivot = true;
			break;
		case OPT_PRESERVE_FDS: {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 0 || v > 65536)
				return vs_err(err, 0, "--preserve-fds: must be a number from 0 to "
						      "65536, not `%s`",
					      optarg);
			a->o.preserve_fds = (int)v;
			break;
		}
		case OPT_DETACH:
			a->detach = true;
			break;
		case OPT_KEEP:
			a->keep = true;
			break;
		case OPT_NO_NEW_KEYRING:
		case OPT_NO_SUBREAPER:
			break;
		case 'h':
			printf("usage: vessel %s ", cmd);
			printf(usage, extra);
			printf("\n");
			return 1;
		default:
			return vs_err(err, 0, "usage: vessel %s [options] ID (see --help)", cmd);
		}
	}
	if (optind != argc - 1)
		return vs_err(err, 0, "%s: exactly one container id is needed (see --help)", cmd);
	a->o.id = argv[optind];
	if (!realpath(bundle, a->bundle))
		return vs_err(err, errno, "--bundle `%s`", bundle);
	a->o.bundle = a->bundle;
	return 0;
}

