/* exec: runc's command line for a new process in a running container. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/util.h"
#include "oci/caps.h"
#include "oci/exec.h"
#include "oci/oci.h"
#include "oci/state.h"
#include "vmc/vmc.h"

enum { OPT_CONSOLE_SOCKET = 256, OPT_PID_FILE, OPT_PRESERVE_FDS, OPT_NO_NEW_PRIVS, OPT_IGNORED };

static const struct option exec_opts_table[] = {
	{"console-socket", required_argument, NULL, OPT_CONSOLE_SOCKET},
	{"cwd", required_argument, NULL, 'w'},
	{"env", required_argument, NULL, 'e'},
	{"tty", no_argument, NULL, 't'},
	{"user", required_argument, NULL, 'u'},
	{"additional-gids", required_argument, NULL, 'g'},
	{"process", required_argument, NULL, 'p'},
	{"detach", no_argument, NULL, 'd'},
	{"pid-file", required_argument, NULL, OPT_PID_FILE},
	{"no-new-privs", no_argument, NULL, OPT_NO_NEW_PRIVS},
	{"cap", required_argument, NULL, 'c'},
	{"preserve-fds", required_argument, NULL, OPT_PRESERVE_FDS},
	/* accepted like runc; vessel applies no LSM labels and has no sub-cgroups to pick */
	{"process-label", required_argument, NULL, OPT_IGNORED},
	{"apparmor", required_argument, NULL, OPT_IGNORED},
	{"cgroup", required_argument, NULL, OPT_IGNORED},
	{"ignore-paused", no_argument, NULL, OPT_IGNORED},
	{"help", no_argument, NULL, 'h'},
	{0},
};

static const char usage[] =
	"usage: vessel exec [--process FILE | [-t] [-e K=V]... [--cwd DIR] [-u UID[:GID]]\n"
	"                   [-g GID]... [--cap CAP]... [--no-new-privs]] [-d] [--pid-file F]\n"
	"                   [--console-socket SOCK] [--preserve-fds N] ID [COMMAND [ARG...]]";

struct exec_flags {
	const char *process_file, *cwd, *user;
	char **env, **caps;
	size_t n_env, n_caps;
	gid_t gids[64];
	size_t n_gids;
	bool tty, nnp;
	char **guest_opts; /* the same options as "--NAME=VALUE", for a VM-isolated container */
	size_t n_guest_opts;
};

static int push(char ***v, size_t *n, const char *s, vs_err_t *err)
{
	char **nv = realloc(*v, (*n + 2) * sizeof(char *));
	if (!nv)
		return vs_err(err, ENOMEM, "exec");
	*v = nv;
	nv[(*n)++] = (char *)s;
	nv[*n] = NULL;
	return 0;
}

/* A VM-isolated container's exec runs this command in the guest: the options it must see */
static int guest_opt(struct exec_flags *f, const char *name, const char *value, vs_err_t *err)
{
	char *s;
	if ((value ? asprintf(&s, "--%s=%s", name, value) : asprintf(&s, "--%s", name)) < 0)
		return vs_err(err, ENOMEM, "exec");
	if (push(&f->guest_opts, &f->n_guest_opts, s, err) < 0) {
		free(s);
		return -1;
	}
	return 0;
}

/* Routes the exec to the container's microVM when it has one: 1 with *ret set, 0 if not */
static int exec_in_vm(const struct vs_globals *g, const struct exec_flags *f,
		      const struct exec_opts *o, char **args, int *ret, vs_err_t *err)
{
	struct container_state st;
	vs_err_t e = NULL;
	/* a missing container is reported by the usual path */
	if (state_load(g, o->id, false, &st, &e) < 0) {
		vs_err_free(&e);
		state_release(&st);
		return 0;
	}
	if (!vmc_is_vm(&st)) {
		state_release(&st);
		return 0;
	}
	struct vmc_exec_opts v = {.options = f->guest_opts,
				  .command = args,
				  .process_file = f->process_file,
				  .pid_file = o->pid_file,
				  .detach = o->detach,
				  .tty = f->tty,
				  .console_socket = o->console_socket};
	static char *none[] = {NULL};
	if (!v.options)
		v.options = none;
	if (o->preserve_fds > 0)
		*ret = vs_err(err, 0,
			      "cannot exec in container `%s`: --preserve-fds is not supported "
			      "for VM-isolated containers (the process runs in the guest)",
			      o->id);
	else
		*ret = vmc_exec(&st, &v, err);
	state_release(&st);
	return 1;
}

static int set_env(struct spec_process *p, const char *kv, vs_err_t *err)
{
	const char *eq = strchr(kv, '=');
	if (!eq || eq == kv)
		return vs_err(err, 0, "--env: must be KEY=VALUE, not `%s`", kv);
	size_t klen = (size_t)(eq - kv) + 1, n = 0;
	for (; p->env && p->env[n]; n++) {
		if (strncmp(p->env[n], kv, klen) == 0) {
			char *dup = strdup(kv);
			if (!dup)
				return vs_err(err, ENOMEM, "--env");
			free(p->env[n]);
			p->env[n] = dup;
			return 0;
		}
	}
	char **nv = realloc(p->env, (n + 2) * sizeof(char *));
	if (!nv || !(nv[n] = strdup(kv)))
		return vs_err(err, ENOMEM, "--env");
	nv[n + 1] = NULL;
	p->env = nv;
	return 0;
}

static int parse_user(const char *s, struct spec_process *p, vs_err_t *err)
{
	char *end;
	unsigned long uid = strtoul(s, &end, 10);
	unsigned long gid = p->user.gid;
	if (end == s || (*end && *end != ':') || uid >= UINT32_MAX)
		return vs_err(err, 0, "--user: must be UID[:GID] in numbers, not `%s`", s);
	if (*end == ':') {
		const char *g = end + 1;
		gid = strtoul(g, &end, 10);
		if (end == g || *end || gid >= UINT32_MAX)
			return vs_err(err, 0, "--user: must be UID[:GID] in numbers, not `%s`", s);
	}
	p->user.uid = (uid_t)uid;
	p->user.gid = (gid_t)gid;
	return 0;
}

/* The args form starts from the container's own process and changes what was asked. */
static int apply_flags(struct spec_process *p, const struct exec_flags *f, char **args,
		       vs_err_t *err)
{
	size_t n = 0;
	while (args[n])
		n++;
	char **nargs = calloc(n + 1, sizeof(char *));
	if (!nargs)
		return vs_err(err, ENOMEM, "exec");
	for (size_t i = 0; i < n; i++)
		if (!(nargs[i] = strdup(args[i]))) {
			vjson_strv_free(nargs);
			return vs_err(err, ENOMEM, "exec");
		}
	vjson_strv_free(p->args);
	p->args = nargs;
	for (size_t i = 0; i < f->n_env; i++)
		if (set_env(p, f->env[i], err) < 0)
			return -1;
	if (f->cwd) {
		if (f->cwd[0] != '/')
			return vs_err(err, 0, "--cwd: must be an absolute path, not `%s`", f->cwd);
		p->cwd = f->cwd;
	}
	if (f->user && parse_user(f->user, p, err) < 0)
		return -1;
	if (f->n_gids) {
		gid_t *g = calloc(f->n_gids, sizeof(gid_t));
		if (!g)
			return vs_err(err, ENOMEM, "exec");
		memcpy(g, f->gids, f->n_gids * sizeof(gid_t));
		free(p->user.additional_gids);
		p->user.additional_gids = g;
		p->user.n_additional_gids = f->n_gids;
	}
	for (size_t i = 0; i < f->n_caps; i++) {
		int cap = caps_from_name(f->caps[i]);
		if (cap < 0)
			return vs_err(err, 0, "--cap: unknown capability `%s`", f->caps[i]);
		uint64_t bit = 1ull << cap;
		p->caps.present = true;
		p->caps.bounding |= bit;
		p->caps.effective |= bit;
		p->caps.permitted |= bit;
	}
	/* runc's: the args form has a terminal only with -t, whatever the container's has
	 * (podman execs without -t in a container it runs with -it) */
	p->terminal = f->tty;
	if (f->nnp)
		p->no_new_privileges = true;
	return 0;
}

static int load_process(const struct vs_globals *g, const char *id, const struct exec_flags *f,
			char **args, json_t **doc, struct spec_process *p, vs_err_t *err)
{
	if (f->process_file) {
		*doc = vjson_load_file(f->process_file, 1 << 20, err);
		if (!*doc)
			return -1;
		if (spec_parse_process(*doc, "process", p, err) < 0)
			return vs_err_wrap(err, "%s", f->process_file);
		return 0;
	}
	if (!args[0])
		return vs_err(err, 0, "exec: a command is needed after the container id\n%s", usage);
	struct container_state st;
	if (state_load(g, id, false, &st, err) < 0) {
		state_release(&st);
		return -1;
	}
	cleanup_free char *path = NULL;
	if (asprintf(&path, "%s/config.json", st.bundle) < 0)
		path = NULL;
	state_release(&st);
	if (!path)
		return vs_err(err, ENOMEM, "exec");
	*doc = vjson_load_file(path, 16 << 20, err);
	if (!*doc)
		return -1;
	json_t *proc = json_object_get(*doc, "process");
	if (!json_is_object(proc))
		return vs_err(err, 0, "%s: process: is required", path);
	if (spec_parse_process(proc, "process", p, err) < 0)
		return vs_err_wrap(err, "%s", path);
	return apply_flags(p, f, args, err);
}

int oci_cmd_exec(const struct vs_globals *g, int argc, char **argv, vs_err_t *err)
{
	struct exec_flags f = {0};
	struct exec_opts o = {0};
	int c, ret = -1;
	while ((c = getopt_long(argc, argv, "+w:e:tu:g:p:dc:h", exec_opts_table, NULL)) != -1) {
		switch (c) {
		case OPT_CONSOLE_SOCKET:
			o.console_socket = optarg;
			break;
		case 'w':
			if (guest_opt(&f, "cwd", optarg, err) < 0)
				goto out;
			f.cwd = optarg;
			break;
		case 'e':
			if (guest_opt(&f, "env", optarg, err) < 0)
				goto out;
			if (push(&f.env, &f.n_env, optarg, err) < 0)
				goto out;
			break;
		case 't':
			f.tty = true;
			break;
		case 'u':
			if (guest_opt(&f, "user", optarg, err) < 0)
				goto out;
			f.user = optarg;
			break;
		case 'g': {
			if (guest_opt(&f, "additional-gids", optarg, err) < 0)
				goto out;
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || end == optarg || v >= UINT32_MAX || f.n_gids == ARRAY_SIZE(f.gids)) {
				vs_err(err, 0, "--additional-gids: bad group id `%s`", optarg);
				goto out;
			}
			f.gids[f.n_gids++] = (gid_t)v;
			break;
		}
		case 'p':
			f.process_file = optarg;
			break;
		case 'd':
			o.detach = true;
			break;
		case OPT_PID_FILE:
			o.pid_file = optarg;
			break;
		case OPT_NO_NEW_PRIVS:
			if (guest_opt(&f, "no-new-privs", NULL, err) < 0)
				goto out;
			f.nnp = true;
			break;
		case 'c':
			if (guest_opt(&f, "cap", optarg, err) < 0)
				goto out;
			if (push(&f.caps, &f.n_caps, optarg, err) < 0)
				goto out;
			break;
		case OPT_PRESERVE_FDS: {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 0 || v > 65536) {
				vs_err(err, 0, "--preserve-fds: must be a number from 0 to 65536");
				goto out;
			}
			o.preserve_fds = (int)v;
			break;
		}
		case OPT_IGNORED:
			break;
		case 'h':
			printf("%s\n", usage);
			ret = 0;
			goto out;
		default:
			vs_err(err, 0, "%s", usage);
			goto out;
		}
	}
	if (optind >= argc) {
		vs_err(err, 0, "%s", usage);
		goto out;
	}
	o.id = argv[optind];
	if (state_check_id(o.id, err) < 0)
		goto out;
	if (exec_in_vm(g, &f, &o, argv + optind + 1, &ret, err))
		goto out;
	json_t *doc = NULL;
	struct spec_process p;
	memset(&p, 0, sizeof(p));
	if (load_process(g, o.id, &f, argv + optind + 1, &doc, &p, err) == 0) {
		if (p.terminal && o.detach && !o.console_socket)
			vs_err(err, 0, "exec: a terminal with --detach needs --console-socket");
		else {
			o.process = &p;
			ret = exec_in_container(g, &o, err);
		}
	}
	spec_process_release(&p);
	json_decref(doc);
out:
	free(f.env);
	free(f.caps);
	for (size_t i = 0; i < f.n_guest_opts; i++)
		free(f.guest_opts[i]);
	free(f.guest_opts);
	return ret;
}
