#include "jail/args.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

const char jail_usage[] =
    "usage: vessel jail --id ID --exec-file PATH --uid UID --gid GID\n"
    "                   [--chroot-base-dir DIR] [--netns PATH] [--cgroup-version 1|2]\n"
    "                   [--cgroup FILE=VALUE]... [--parent-cgroup PATH]\n"
    "                   [--resource-limit fsize=N|no-file=N]... [--daemonize]\n"
    "                   [--new-pid-ns] [-- VMM-ARGS...]\n"
    "\n"
    "Runs the VMM binary jailed in <chroot-base-dir>/<exec-name>/<id>/root (docs/jail.md).";

/* Firecracker's defaults: no file-size limit, 2048 open files */
#define DEFAULT_NOFILE 2048

bool jail_id_valid(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > JAIL_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return false;
	}
	return true;
}

static int parse_u64(const char *opt, const char *s, uint64_t max, uint64_t *out, vs_err_t *err)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (!*s || *s == '-' || *end || errno || v > max)
		return vs_err(err, 0, "%s `%s`: must be an integer from 0 to %" PRIu64, opt, s,
			      max);
	*out = v;
	return 0;
}

static int parse_rlimit(struct jail_args *a, const char *s, vs_err_t *err)
{
	const char *eq = strchr(s, '=');
	uint64_t v = 0;
	if (!eq)
		return vs_err(err, 0, "--resource-limit `%s`: must be fsize=N or no-file=N", s);
	if (parse_u64("--resource-limit", eq + 1, UINT64_MAX - 1, &v, err) < 0)
		return -1;
	if ((size_t)(eq - s) == 5 && strncmp(s, "fsize", 5) == 0) {
		a->has_fsize = true;
		a->fsize = v;
	} else if ((size_t)(eq - s) == 7 && strncmp(s, "no-file", 7) == 0) {
		a->nofile = v;
	} else {
		return vs_err(err, 0, "--resource-limit `%s`: unknown resource (fsize or no-file)",
			      s);
	}
	return 0;
}

static int add_cgroup(struct jail_args *a, const char *s, vs_err_t *err)
{
	const char *eq = strchr(s, '=');
	if (!eq || eq == s || memchr(s, '/', (size_t)(eq - s)))
		return vs_err(err, 0, "--cgroup `%s`: must be FILE=VALUE (e.g. memory.max=128M)",
			      s);
	if (a->ncgroup == JAIL_MAX_CGROUPS)
		return vs_err(err, 0, "--cgroup: at most %d", JAIL_MAX_CGROUPS);
	a->cgroup[a->ncgroup].file = strndup(s, (size_t)(eq - s));
	a->cgroup[a->ncgroup].value = strdup(eq + 1);
	if (!a->cgroup[a->ncgroup].file || !a->cgroup[a->ncgroup].value)
		return vs_err(err, ENOMEM, "--cgroup");
	a->ncgroup++;
	return 0;
}

enum {
	OPT_ID = 256,
	OPT_EXEC,
	OPT_UID,
	OPT_GID,
	OPT_BASE,
	OPT_NETNS,
	OPT_CGV,
	OPT_CG,
	OPT_PARENT,
	OPT_RLIMIT,
	OPT_DAEMON,
	OPT_PIDNS,
};

int jail_args_parse(struct jail_args *a, int argc, char **argv, vs_err_t *err)
{
	static const struct option opts[] = {
	    {"id", required_argument, NULL, OPT_ID},
	    {"exec-file", required_argument, NULL, OPT_EXEC},
	    {"uid", required_argument, NULL, OPT_UID},
	    {"gid", required_argument, NULL, OPT_GID},
	    {"chroot-base-dir", required_argument, NULL, OPT_BASE},
	    {"netns", required_argument, NULL, OPT_NETNS},
	    {"cgroup-version", required_argument, NULL, OPT_CGV},
	    {"cgroup", required_argument, NULL, OPT_CG},
	    {"parent-cgroup", required_argument, NULL, OPT_PARENT},
	    {"resource-limit", required_argument, NULL, OPT_RLIMIT},
	    {"daemonize", no_argument, NULL, OPT_DAEMON},
	    {"new-pid-ns", no_argument, NULL, OPT_PIDNS},
	    {0},
	};
	memset(a, 0, sizeof(*a));
	a->base = "/srv/jailer";
	a->cgroup_version = 1;
	a->nofile = DEFAULT_NOFILE;
	bool has_uid = false, has_gid = false;
	uint64_t v = 0;
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case OPT_ID:
			a->id = optarg;
			break;
		case OPT_EXEC:
			a->exec_file = optarg;
			break;
		case OPT_UID:
			if (parse_u64("--uid", optarg, UINT32_MAX - 1, &v, err) < 0)
				return -1;
			a->uid = (uid_t)v;
			has_uid = true;
			break;
		case OPT_GID:
			if (parse_u64("--gid", optarg, UINT32_MAX - 1, &v, err) < 0)
				return -1;
			a->gid = (gid_t)v;
			has_gid = true;
			break;
		case OPT_BASE:
			a->base = optarg;
			break;
		case OPT_NETNS:
			a->netns = optarg;
			break;
		case OPT_CGV:
			if (strcmp(optarg, "1") != 0 && strcmp(optarg, "2") != 0)
				return vs_err(err, 0, "--cgroup-version `%s`: must be 1 or 2",
					      optarg);
			a->cgroup_version = optarg[0] - '0';
			break;
		case OPT_CG:
			if (add_cgroup(a, optarg, err) < 0)
				return -1;
			break;
		case OPT_PARENT:
			a->parent_cgroup = optarg;
			break;
		case OPT_RLIMIT:
			if (parse_rlimit(a, optarg, err) < 0)
				return -1;
			break;
		case OPT_DAEMON:
			a->daemonize = true;
			break;
		case OPT_PIDNS:
			a->new_pid_ns = true;
			break;
		default:
			return vs_err(err, 0,
				      "jail: `%s` is not an option or lacks its value (see vessel "
				      "jail --help)",
				      argv[optind - 1]);
		}
	}
	if (optind < argc && strcmp(argv[optind - 1], "--") != 0)
		return vs_err(err, 0, "jail: unexpected `%s` (VMM arguments follow `--`)",
			      argv[optind]);
	a->vmm_argc = argc - optind;
	a->vmm_argv = argv + optind;
	if (!a->id)
		return vs_err(err, 0, "jail: --id is required");
	if (!jail_id_valid(a->id))
		return vs_err(err, 0, "--id `%s`: 1 to %d ASCII letters, digits or `-`", a->id,
			      JAIL_ID_MAX);
	if (!a->exec_file)
		return vs_err(err, 0, "jail: --exec-file is required");
	if (!has_uid || !has_gid)
		return vs_err(err, 0, "jail: --uid and --gid are required");
	if (a->base[0] != '/')
		return vs_err(err, 0, "--chroot-base-dir `%s`: must be an absolute path", a->base);
	if (a->parent_cgroup &&
	    (!*a->parent_cgroup || strstr(a->parent_cgroup, "..") || a->parent_cgroup[0] == '/'))
		return vs_err(err, 0, "--parent-cgroup `%s`: a relative path without `..`",
			      a->parent_cgroup);
	return 0;
}

void jail_args_free(struct jail_args *a)
{
	for (size_t i = 0; i < a->ncgroup; i++) {
		free(a->cgroup[i].file);
		free(a->cgroup[i].value);
	}
	a->ncgroup = 0;
}
