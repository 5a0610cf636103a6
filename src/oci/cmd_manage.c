/* ps, pause, resume, update, events: what podman and containerd's shim do to a
 * container while it runs. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/json.h"
#include "base/util.h"
#include "sandbox/sandbox.h"
#include "oci/lifecycle.h"
#include "oci/oci.h"
#include "oci/state.h"
#include "vmc/vmc.h"

/* A loaded, locked container and its cgroup: on the host, or (vm) in its microVM, where
 * the guest's runtime does each command (src/vmc/ops.c). */
struct handle {
	struct container_state st;
	struct cgroup *cg;
	bool vm;
};

static int open_container(const struct vs_globals *g, const char *id, struct handle *h,
			  vs_err_t *err)
{
	memset(h, 0, sizeof(*h));
	if (state_load(g, id, true, &h->st, err) < 0)
		return -1;
	if ((h->vm = vmc_is_vm(&h->st)))
		return 0;
	if (!h->st.cgroup)
		return vs_err(err, 0, "container `%s` has no cgroup", id);
	return cgroup_from_json(h->st.cgroup, &h->cg, err);
}

static void close_container(struct handle *h)
{
	cgroup_free(h->cg);
	state_release(&h->st);
}

static int require_alive(struct handle *h, vs_err_t *err)
{
	if (state_status(&h->st) == STATUS_STOPPED)
		return vs_err(err, 0, "container `%s`: container not running", h->st.id);
	return 0;
}

/* A rootless container that got no cgroup (none delegated) has none to freeze, limit or
 * read. */
static int require_cgroup(struct handle *h, const char *what, vs_err_t *err)
{
	const struct cgroup_mount *m;
	if (!h->vm && cgroup_mounts(h->cg, &m) == 0)
		return vs_err(err, 0, "cannot %s container `%s`: it has no cgroup of its own "
				      "(rootless, and no cgroup was delegated to its user)",
			      what, h->st.id);
	return 0;
}

static int one_id_arg(int argc, const char *usage, vs_err_t *err)
{
	if (optind != argc - 1)
		return vs_err(err, 0, "usage: vessel %s", usage);
	return 0;
}

/* ps --format table runs ps(1) and keeps the container's lines, as runc does. */
static int ps_table(pid_t *pids, size_t n, char **ps_args, vs_err_t *err)
{
	int pipefd[2];
	if (pipe(pipefd) < 0)
		return vs_err(err, errno, "pipe");
	pid_t child = fork();
	if (child < 0)
		return vs_err(err, errno, "fork");
	if (child == 0) {
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		close(pipefd[1]);
		size_t k = 0;
		while (ps_args[k])
			k++;
		char **av = calloc(k + 3, sizeof(char *));
		av[0] = (char *)"ps";
		if (k)
			memcpy(av + 1, ps_args, k * sizeof(char *));
		else
			av[1] = (char *)"-ef";
		execvp("ps", av);
		_exit(127);
	}
	close(pipefd[1]);
	FILE *f = fdopen(pipefd[0], "r");
	char line[4096];
	int pid_col = -1, ret = 0;
	while (f && fgets(line, sizeof(line), f)) {
		if (pid_col < 0) {
			/* the header names the PID column */
			char copy[4096], *save = NULL;
			snprintf(copy, sizeof(copy), "%s", line);
			int col = 0;
			for (char *tok = strtok_r(copy, " \t\n", &save); tok;
			     tok = strtok_r(NULL, " \t\n", &save), col++)
				if (strcmp(tok, "PID") == 0)
					pid_col = col;
			if (pid_col < 0) {
				ret = vs_err(err, 0, "ps: no PID column in ps's output");
				break;
			}
			fputs(line, stdout);
			continue;
		}
		char copy[4096], *save = NULL, *tok;
		snprintf(copy, sizeof(copy), "%s", line);
		tok = strtok_r(copy, " \t\n", &save);
		for (int col = 0; tok && col < pid_col; col++)
			tok = strtok_r(NULL, " \t\n", &save);
		if (!tok)
			continue;
		pid_t p = (pid_t)atoi(tok);
		for (size_t i = 0; i < n; i++)
			if (pids[i] == p)
				fputs(line, stdout);
	}
	if (f)
		fclose(f);
	int status;
	waitpid(child, &status, 0);
	if (ret == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		ret = vs_err(err, 0, "ps: ps(1) failed");
	return ret;
}

int oci_cmd_ps(const struct vs_globals *g, int argc, char **argv, vs_err_t *err)
{
	const char *format = "table";
	static const struct option opts[] = {{"format", required_argument, NULL, 'f'}, {0}};
	int c;
	while ((c = getopt_long(argc, argv, "+f:", opts, NULL)) != -1) {
		if (c != 'f')
			return vs_err(err, 0, "usage: vessel ps [--format table|json] ID [PS_ARGS...]");
		format = optarg;
	}
	if (strcmp(format, "table") && strcmp(format, "json"))
		return vs_err(err, 0, "ps: --format must be table or json, not `%s`", format);
	if (optind >= argc)
		return vs_err(err, 0, "usage: vessel ps [--format table|json] ID [PS_ARGS...]");
	struct handle h;
	if (open_container(g, argv[optind], &h, err) < 0) {
		close_container(&h);
		return -1;
	}
	if (h.vm) {
		int rc = vmc_ps(&h.st, strcmp(format, "json") == 0, argv + optind + 1, err);
		close_container(&h);
		return rc;
	}
	pid_t *pids = NULL;
	size_t n = 0;
	int ret = lifecycle_pids(&h.st, h.cg, &pids, &n, err);
	if (ret == 0 && strcmp(format, "json") == 0) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, json_integer(pids[i]));
		char *text = json_dumps(a, JSON_COMPACT);
		json_decref(a);
		printf("%s\n", text ? text : "[]");
		free(text);
	} else if (ret == 0) {
		fflush(stdout);
		ret = ps_table(pids, n, argv + optind + 1, err);
	}
	free(pids);
	close_container(&h);
	return ret;
}

static int set_paused(const struct vs_globals *g, int argc, char **argv, bool pause,
		      vs_err_t *err)
{
	optind = 1;
	if (argc != 2)
		return vs_err(err, 0, "usage: vessel %s ID", pause ? "pause" : "resume");
	struct handle h;
	int ret = open_container(g, argv[1], &h, err);
	if (ret == 0)
		ret = require_cgroup(&h, pause ? "pause" : "resume", err);
	if (ret == 0) {
		enum container_status s = state_status(&h.st);
		if (pause && s != STATUS_RUNNING && s != STATUS_CREATED)
			ret = vs_err(err, 0, "cannot pause container `%s`: it is %s", h.st.id,
				     state_status_name(s));
		else if (!pause && s != STATUS_PAUSED)
			ret = vs_err(err, 0, "cannot resume container `%s`: it is %s, not paused",
				     h.st.id, state_status_name(s));
	}
	if (ret == 0)
		ret = h.vm ? vmc_set_paused(&h.st, pause, err) : cgroup_freeze(h.cg, pause, err);
	if (ret == 0) {
		h.st.paused = pause;
		ret = state_save(&h.st, err);
	}
	close_container(&h);
	return ret;
}

int oci_cmd_pause(const struct vs_globals *g, int argc, char **argv, vs_err_t *err)
{
	return set_paused(g, argc, argv, true, err);
}

int oci_cmd_resume(const struct vs_globals *g, int argc, char **argv, vs_err_t *err)
{
	return set_paused(g, argc, argv, false, err);
}

/* The flag forms of update, as runc names them, and where each goes in resources. */
static const struct {
	const char *flag, *object, *key;
	bool size; /* takes K/M/G */
} update_flags[] = {
	{"memory", "memory", "limit", true},
	{"memory-reservation", "memory", "reservation", true},
	{"memory-swap", "memory", "swap", true},
	{"kernel-memory", "memory", "kernel", true},
	{"kernel-memory-tcp", "memory", "kernelTCP", true},
	{"cpu-shares", "cpu", "shares", false},
	{"cpu-quota", "cpu", "quota", false},
	{"cpu-period", "cpu", "period", false},
	{"cpu-rt-runtime", "cpu", "realtimeRuntime", false},
	{"cpu-rt-period", "cpu", "realtimePeriod", false},
	{"cpuset-cpus", "cpu", "cpus", false},
	{"cpuset-mems", "cpu", "mems", false},
	{"pids-limit", "pids", "limit", false},
	{"blkio-weight", "blockIO", "weight", false},
};

static int add_flag(json_t *res, size_t k, const char *value, vs_err_t *err)
{
	json_t *obj = json_object_get(res, update_flags[k].object);
	if (!obj) {
		obj = json_object();
		json_object_set_new(res, update_flags[k].object, obj);
	}
	json_t *v;
	if (strcmp(update_flags[k].key, "cpus") == 0 || strcmp(update_flags[k].key, "mems") == 0) {
		v = json_string(value);
	} else if (update_flags[k].size && strcmp(value, "-1") != 0) {
		uint64_t n;
		if (vs_parse_size(value, &n) < 0 || n > INT64_MAX)
			return vs_err(err, 0, "--%s: not a size: `%s`", update_flags[k].flag, value);
		v = json_integer((json_int_t)n);
	} else {
		char *end;
		long long n = strtoll(value, &end, 10);
		if (*end || end == value)
			return vs_err(err, 0, "--%s: not a number: `%s`", update_flags[k].flag,
				      value);
		v = json_integer(n);
	}
	json_object_set_new(obj, update_flags[k].key, v);
	return 0;
}

int oci_cmd_update(const struct vs_globals *g, int argc, char **argv, vs_err_t *err)
{
	struct option opts[ARRAY_SIZE(update_flags) + 2];
	memset(opts, 0, sizeof(opts));
	for (size_t k = 0; k < ARRAY_SIZE(update_flags); k++)
		opts[k] = (struct option){update_flags[k].flag, required_argument, NULL, 1000 + (int)k};
	opts[ARRAY_SIZE(update_flags)] =
		(struct option){"resources", required_argument, NULL, 'r'};
	json_t *res = NULL, *flags = json_object();
	const char *file = NULL;
	int c, ret = -1;
	while ((c = getopt_long(argc, argv, "+r:", opts, NULL)) != -1) {
		if (c == 'r') {
			file = optarg;
		} else if (c >= 1000 && (size_t)(c - 1000) < ARRAY_SIZE(update_flags)) {
			if (add_flag(flags, (size_t)(c - 1000), optarg, err) < 0)
				goto out;
		} else {
			vs_err(err, 0, "usage: vessel update [--resources FILE|-] [--memory N] "
				       "[--cpu-quota N] ... ID");
			goto out;
		}
	}
	if (one_id_arg(argc, "update [--resources FILE|-] [FLAGS...] ID", err) < 0)
		goto out;
	if (file) {
		json_error_t jerr;
		res = strcmp(file, "-") == 0 ? json_loadf(stdin, JSON_REJECT_DUPLICATES, &jerr)
					     : vjson_load_file(file, 1 << 20, err);
		if (!res) {
			if (!err || !*err)
				vs_err(err, 0, "--resources: invalid JSON at line %d: %s", jerr.line,
				       jerr.text);
			goto out;
		}
		/* flags win over the file, as in runc */
		json_object_update_recursive(res, flags);
	} else {
		res = json_incref(flags);
	}
	struct cgroup_resources *r = NULL;
	if (cgroup_resources_parse(res, "resources", &r, err) < 0)
		goto out;
	struct handle h;
	ret = open_container(g, argv[optind], &h, err);
	if (ret == 0)
		ret = require_alive(&h, err);
	if (ret == 0)
		ret = require_cgroup(&h, "update", err);
	if (ret == 0 && h.vm) {
		/* the guest's runtime parses and applies it again, in its cgroup */
		ret = vmc_update(&h.st, res, err);
	} else if (ret == 0) {
		ret = cgroup_apply(h.cg, r, err);
	}
	if (ret == 0 && !h.vm) {
		/* apply may have switched a controller on that delete must give back */
		json_decref(h.st.cgroup);
		h.st.cgroup = cgroup_to_json(h.cg);
		ret = state_save(&h.st, err);
	}
	close_container(&h);
	cgroup_resources_free(r);
out:
	json_decref(res);
	json_decref(flags);
	return ret;
}

static int print_stats(struct handle *h, vs_err_t *err)
{
	json_t *data = h->vm ? vmc_stats(&h->st, err) : cgroup_stats(h->cg, err);
	if (!data)
		return -1;
	json_t *ev = json_pack("{s:s, s:s, s:o}", "type", "stats", "id", h->st.id, "data", data);
	char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
	json_decref(ev);
	if (!text)
		return vs_err(err, ENOMEM, "events");
	printf("%s\n", text);
	fflush(stdout);
	free(text);
	return 0;
}

int oci_cmd_events(const struct vs_globals *g, int argc, char **argv, vs_err_t *err)
{
	bool stats = false;
	long interval = 5;
	static const struct option opts[] = {{"stats", no_argument, NULL, 's'},
					     {"interval", required_argument, NULL, 'i'},
					     {0}};
	int c;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		if (c == 's') {
			stats = true;
		} else if (c == 'i') {
			char *end;
			interval = strtol(optarg, &end, 10);
			/* runc takes Go durations: "5s" */
			if (*end == 's')
				end++;
			if (*end || interval <= 0 || interval > 86400)
				return vs_err(err, 0, "--interval: must be seconds, like 5s");
		} else {
			return vs_err(err, 0, "usage: vessel events [--stats] [--interval 5s] ID");
		}
	}
	if (one_id_arg(argc, "events [--stats] [--interval 5s] ID", err) < 0)
		return -1;
	struct handle h;
	int ret = open_container(g, argv[optind], &h, err);
	if (ret == 0)
		ret = require_alive(&h, err);
	if (ret == 0)
		ret = require_cgroup(&h, "read the stats of", err);
	if (ret == 0)
		state_unlock(&h.st);
	/* --stats: one snapshot; otherwise a stats event every interval until it stops */
	while (ret == 0) {
		ret = print_stats(&h, err);
		if (stats || ret < 0)
			break;
		sleep((unsigned)interval);
		if (state_status(&h.st) == STATUS_STOPPED)
			break;
	}
	close_container(&h);
	return ret;
}
