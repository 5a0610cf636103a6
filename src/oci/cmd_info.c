/* list, spec, features: commands that describe rather than change. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "oci/caps.h"
#include "oci/oci.h"
#include "oci/placement.h"
#include "oci/seccomp.h"
#include "oci/spec.h"
#include "oci/state.h"

static int print_json(json_t *j, size_t flags, vs_err_t *err)
{
	char *text = j ? json_dumps(j, flags) : NULL;
	json_decref(j);
	if (!text)
		return vs_err(err, ENOMEM, "json");
	printf("%s\n", text);
	free(text);
	return 0;
}

int oci_cmd_list(const struct vs_globals *g, int argc, char **argv, vs_err_t *err)
{
	const char *format = "table";
	bool quiet = false;
	int c;
	static const struct option opts[] = {{"format", required_argument, NULL, 'f'},
					     {"quiet", no_argument, NULL, 'q'},
					     {0}};
	while ((c = getopt_long(argc, argv, "+f:q", opts, NULL)) != -1) {
		if (c == 'f')
			format = optarg;
		else if (c == 'q')
			quiet = true;
		else
			return vs_err(err, 0, "usage: vessel list [--format table|json] [--quiet]");
	}
	if (strcmp(format, "table") && strcmp(format, "json"))
		return vs_err(err, 0, "list: --format must be table or json, not `%s`", format);
	json_t *all = json_array();
	DIR *d = opendir(g->root);
	if (!d && errno != ENOENT) {
		json_decref(all);
		return vs_err(err, errno, "open the state root `%s`", g->root);
	}
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		struct container_state st;
		vs_err_t lerr = NULL;
		int rc = state_load(g, e->d_name, false, &st, &lerr);
		/* an unreadable record is still listed, as stopped: delete -f removes it */
		if (rc < 0 && st.garbled)
			vs_warn("%s", lerr->msg);
		vs_err_free(&lerr);
		if (rc == 0 || st.garbled) {
			enum container_status s = rc == 0 ? state_status(&st) : STATUS_STOPPED;
			json_t *j = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s}", "ociVersion",
					      "1.2.0", "id", st.id, "pid",
					      (json_int_t)(s == STATUS_STOPPED ? 0 : st.pid),
					      "status", state_status_name(s), "bundle",
					      rc == 0 && st.bundle ? st.bundle : "", "rootfs",
					      rc == 0 && st.rootfs ? st.rootfs : "", "created",
					      rc == 0 && st.created ? st.created : "", "owner", "root");
			if (j)
				json_array_append_new(all, j);
		}
		state_release(&st);
	}
	if (d)
		closedir(d);
	if (strcmp(format, "json") == 0)
		return print_json(all, JSON_COMPACT, err);
	if (!quiet)
		printf("%-12s %-8s %-10s %-40s %-30s %s\n", "ID", "PID", "STATUS", "BUNDLE",
		       "CREATED", "OWNER");
	size_t i;
	json_t *j;
	json_array_foreach(all, i, j)
	{
		if (quiet) {
			printf("%s\n", json_string_value(json_object_get(j, "id")));
			continue;
		}
		printf("%-12s %-8lld %-10s %-40s %-30s %s\n",
		       json_string_value(json_object_get(j, "id")),
		       (long long)json_integer_value(json_object_get(j, "pid")),
		       json_string_value(json_object_get(j, "status")),
		       json_string_value(json_object_get(j, "bundle")),
		       json_string_value(json_object_get(j, "created")), "root");
	}
	json_decref(all);
	return 0;
}

/* runc's `spec` output, the config every OCI tool knows as the default. */
static const char default_spec[] =
#include "oci/default_spec.inc"
	;

static json_t *rootless_variant(json_t *spec)
{
	json_t *lx = json_object_get(spec, "linux");
	json_t *ns = json_object_get(lx, "namespaces");
	json_t *keep = json_array();
	size_t i;
	json_t *n;
	json_array_foreach(ns, i, n)
	{
		const char *t = json_string_value(json_object_get(n, "type"));
		if (t && strcmp(t, "network") && strcmp(t, "cgroup"))
			json_array_append(keep, n);
	}
	json_array_append_new(keep, json_pack("{s:s}", "type", "user"));
	json_object_set_new(lx, "namespaces", keep);
	json_object_set_new(lx, "uidMappings",
			    json_pack("[{s:i, s:I, s:i}]", "containerID", 0, "hostID",
				      (json_int_t)getuid(), "size", 1));
	json_object_set_new(lx, "gidMappings",
			    json_pack("[{s:i, s:I, s:i}]", "containerID", 0, "hostID",
				      (json_int_t)getgid(), "size", 1));
	json_object_del(lx, "resources");
	/* sysfs cannot be mounted without a network namespace of our own: bind it */
	json_t *mounts = json_object_get(spec, "mounts");
	json_t *m;
	json_array_foreach(mounts, i, m)
	{
		const char *dst = json_string_value(json_object_get(m, "destination"));
		if (dst && strcmp(dst, "/sys") == 0) {
			json_object_set_new(m, "type", json_string("none"));
			json_object_set_new(m, "source", json_string("/sys"));
			json_object_set_new(m, "options",
					    json_pack("[s,s,s,s]", "rbind", "nosuid", "noexec",
						      "nodev"));
		}
		if (dst && strcmp(dst, "/dev/pts") == 0)
			json_object_set_new(m, "options",
					    json_pack("[s,s,s,s,s]", "nosuid", "noexec",
						      "newinstance", "ptmxmode=0666", "mode=0620"));
	}
	return spec;
}

int oci_cmd_spec(const struct vs_globals *g, int argc, char **argv, vs_err_t *err)
{
	(void)g;
	const char *bundle = ".";
	bool rootless = false;
	int c;
	static const struct option opts[] = {{"bundle", required_argument, NULL, 'b'},
					     {"rootless", no_argument, NULL, 'r'},
					     {0}};
	while ((c = getopt_long(argc, argv, "+b:", opts, NULL)) != -1) {
		if (c == 'b')
			bundle = optarg;
		else if (c == 'r')
			rootless = true;
		else
			return vs_err(err, 0, "usage: vessel spec [--bundle DIR] [--rootless]");
	}
	json_error_t jerr;
	json_t *spec = json_loads(default_spec, 0, &jerr);
	if (!spec)
		return vs_err(err, 0, "built-in spec: %s", jerr.text);
	if (rootless)
		rootless_variant(spec);
	cleanup_free char *path = NULL;
	if (asprintf(&path, "%s/config.json", bundle) < 0) {
		json_decref(spec);
		return vs_err(err, ENOMEM, "spec");
	}
	char *text = json_dumps(spec, JSON_INDENT(2));
	json_decref(spec);
	if (!text)
		return vs_err(err, ENOMEM, "spec");
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		free(text);
		if (errno == EEXIST)
			return vs_err(err, 0, "`%s` exists already: remove it first", path);
		return vs_err(err, errno, "create `%s`", path);
	}
	int rc = vs_write_all(fd, text, strlen(text), err);
	if (rc == 0)
		rc = vs_write_all(fd, "\n", 1, err);
	close(fd);
	free(text);
	return rc < 0 ? vs_err_wrap(err, "`%s`", path) : 0;
}

static json_t *hook_kinds_json(void)
{
	json_t *a = json_array();
	for (int k = 0; a && k < HOOK_KIND_COUNT; k++)
		json_array_append_new(a, json_string(spec_hook_kind_name(k)));
	return a;
}

/* Every list comes from the table the parser itself uses, and every "enabled" from what
 * the runtime applies (intelRdt is refused, apparmor and selinux labels not applied), so
 * the answer cannot drift from the code. */
int oci_cmd_features(const struct vs_globals *g, int argc, char **argv, vs_err_t *err)
{
	(void)g;
	(void)argc;
	(void)argv;
	json_t *f = json_pack(
		"{s:s, s:s, s:o, s:o,"
		" s:{s:o, s:o, s:{s:b, s:b, s:b, s:b, s:b}, s:o, s:{s:b}, s:{s:b}, s:{s:b},"
		"    s:{s:{s:b}}, s:{s:b}, s:{s:o, s:o}},"
		" s:{s:s, s:s}}",
		"ociVersionMin", "1.0.0", "ociVersionMax", "1.2.0", "hooks", hook_kinds_json(),
		"mountOptions", spec_mount_options_json(), "linux", "namespaces",
		spec_namespaces_json(), "capabilities", caps_all_names_json(), "cgroup", "v1", true,
		"v2", true, "systemd", false, "systemdUser", false, "rdma", false, "seccomp",
		seccomp_features_json(), "apparmor", "enabled", false, "selinux", "enabled", false,
		"intelRdt", "enabled", false, "mountExtensions", "idmap", "enabled", true,
		"netDevices", "enabled", true, "memoryPolicy", "modes",
		placement_mempolicy_modes_json(), "flags", placement_mempolicy_flags_json(),
		"annotations", "org.vessel.version", VESSEL_VERSION, "org.vessel.seccomp.compiler",
		"libseccomp");
	if (!f)
		return vs_err(err, ENOMEM, "features");
	return print_json(f, JSON_INDENT(2), err);
}
