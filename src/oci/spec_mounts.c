/* mounts of config.json: options split into mount(2) flags, propagation and the
 * data string the filesystem parses itself. */
#include "oci/spec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include "base/json.h"
#include "base/util.h"

struct mount_opt {
	const char *name;
	bool clear; /* the option clears the flag (rw, suid, dev, exec, ...) */
	unsigned long flag;
};

static const struct mount_opt flag_opts[] = {
	{"ro", false, MS_RDONLY},
	{"rw", true, MS_RDONLY},
	{"nosuid", false, MS_NOSUID},
	{"suid", true, MS_NOSUID},
	{"nodev", false, MS_NODEV},
	{"dev", true, MS_NODEV},
	{"noexec", false, MS_NOEXEC},
	{"exec", true, MS_NOEXEC},
	{"sync", false, MS_SYNCHRONOUS},
	{"async", true, MS_SYNCHRONOUS},
	{"dirsync", false, MS_DIRSYNC},
	{"remount", false, MS_REMOUNT},
	{"mand", false, MS_MANDLOCK},
	{"nomand", true, MS_MANDLOCK},
	{"atime", true, MS_NOATIME},
	{"noatime", false, MS_NOATIME},
	{"diratime", true, MS_NODIRATIME},
	{"nodiratime", false, MS_NODIRATIME},
	{"relatime", false, MS_RELATIME},
	{"norelatime", true, MS_RELATIME},
	{"strictatime", false, MS_STRICTATIME},
	{"nostrictatime", true, MS_STRICTATIME},
	{"lazytime", false, MS_LAZYTIME},
	{"nolazytime", true, MS_LAZYTIME},
	{"silent", false, MS_SILENT},
	{"loud", true, MS_SILENT},
};

static const struct {
	const char *name;
	unsigned long flags;
} propagation_opts[] = {
	{"private", MS_PRIVATE},	     {"rprivate", MS_PRIVATE | MS_REC},
	{"shared", MS_SHARED},		     {"rshared", MS_SHARED | MS_REC},
	{"slave", MS_SLAVE},		     {"rslave", MS_SLAVE | MS_REC},
	{"unbindable", MS_UNBINDABLE},	     {"runbindable", MS_UNBINDABLE | MS_REC},
};

/* Options that only make sense to other runtimes or to the kernel's recursive
 * mount_setattr; accepted so that configs written for runc load unchanged. */
static const char *const ignored_opts[] = {"defaults", "tmpcopyup"};

/* The recursive flags, applied to the whole tree of the mount with mount_setattr. */
static const struct {
	const char *name;
	bool clear;
	uint64_t attr;
} recursive_opts[] = {
	{"rro", false, MOUNT_ATTR_RDONLY},	{"rrw", true, MOUNT_ATTR_RDONLY},
	{"rnosuid", false, MOUNT_ATTR_NOSUID},	{"rsuid", true, MOUNT_ATTR_NOSUID},
	{"rnodev", false, MOUNT_ATTR_NODEV},	{"rdev", true, MOUNT_ATTR_NODEV},
	{"rnoexec", false, MOUNT_ATTR_NOEXEC},	{"rexec", true, MOUNT_ATTR_NOEXEC},
	{"rnoatime", false, MOUNT_ATTR_NOATIME}, {"rnodiratime", false, MOUNT_ATTR_NODIRATIME},
	{"rrelatime", false, MOUNT_ATTR_RELATIME}, {"rstrictatime", false, MOUNT_ATTR_STRICTATIME},
};

/* options parse_option takes besides the tables */
static const char *const other_opts[] = {"bind", "rbind", "idmap", "ridmap"};

json_t *spec_mount_options_json(void)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < ARRAY_SIZE(flag_opts); i++)
		json_array_append_new(a, json_string(flag_opts[i].name));
	for (size_t i = 0; a && i < ARRAY_SIZE(propagation_opts); i++)
		json_array_append_new(a, json_string(propagation_opts[i].name));
	for (size_t i = 0; a && i < ARRAY_SIZE(other_opts); i++)
		json_array_append_new(a, json_string(other_opts[i]));
	for (size_t i = 0; a && i < ARRAY_SIZE(recursive_opts); i++)
		json_array_append_new(a, json_string(recursive_opts[i].name));
	/* "defaults" asks for nothing; tmpcopyup (crun's) is accepted but not done */
	json_array_append_new(a, json_string("defaults"));
	return a;
}

static int add_data(char **data, const char *opt, vs_err_t *err)
{
	char *n = NULL;
	if (*data ? asprintf(&n, "%s,%s", *data, opt) < 0 : !(n = strdup(opt)))
		return vs_err(err, ENOMEM, "mount options");
	free(*data);
	*data = n;
	return 0;
}

static int parse_option(struct spec_mount *m, const char *o, vs_err_t *err)
{
	if (strcmp(o, "bind") == 0 || strcmp(o, "rbind") == 0) {
		m->bind = true;
		/* "rbind" then "bind" stays recursive, as in runc and crun */
		m->recursive = m->recursive || o[0] == 'r';
		return 0;
	}
	for (size_t k = 0; k < ARRAY_SIZE(flag_opts); k++) {
		if (strcmp(flag_opts[k].name, o) != 0)
			continue;
		if (flag_opts[k].clear) {
			m->flags &= ~flag_opts[k].flag;
			m->clear_flags |= flag_opts[k].flag;
		} else {
			m->flags |= flag_opts[k].flag;
			m->clear_flags &= ~flag_opts[k].flag;
		}
		return 0;
	}
	for (size_t k = 0; k < ARRAY_SIZE(propagation_opts); k++) {
		if (strcmp(propagation_opts[k].name, o) == 0) {
			m->propagation = propagation_opts[k].flags;
			return 0;
		}
	}
	if (strcmp(o, "idmap") == 0 || strcmp(o, "ridmap") == 0) {
		m->idmap = true;
		m->idmap_recursive = m->idmap_recursive || o[0] == 'r';
		return 0;
	}
	for (size_t k = 0; k < ARRAY_SIZE(recursive_opts); k++)
		if (strcmp(recursive_opts[k].name, o) == 0) {
			uint64_t *on = recursive_opts[k].clear ? &m->rattr_clr : &m->rattr_set;
			uint64_t *off = recursive_opts[k].clear ? &m->rattr_set : &m->rattr_clr;
			*on |= recursive_opts[k].attr;
			*off &= ~recursive_opts[k].attr;
			return 0;
		}
	for (size_t k = 0; k < ARRAY_SIZE(ignored_opts); k++)
		if (strcmp(ignored_opts[k], o) == 0)
			return 0;
	return add_data(&m->data, o, err);
}

static int parse_one(json_t *o, const char *ip, const char *bundle, struct spec_mount *m,
		     vs_err_t *err)
{
	if (!json_is_object(o))
		return vs_err(err, 0, "%s: must be an object", ip);
	if (vjson_require(vjson_string(o, ip, "destination", &m->destination, err), ip,
			  "destination", "an absolute path in the container", err) < 0)
		return -1;
	if (m->destination[0] != '/')
		return vs_err(err, 0, "%s.destination: must be an absolute path, not `%s`", ip,
			      m->destination);
	if (vjson_string(o, ip, "type", &m->type, err) < 0 ||
	    vjson_string(o, ip, "source", &m->source, err) < 0)
		return -1;
	json_t *opts = NULL;
	if (vjson_array(o, ip, "options", &opts, err) < 0)
		return -1;
	for (size_t i = 0; i < json_array_size(opts); i++) {
		json_t *s = json_array_get(opts, i);
		if (!json_is_string(s) ||
		    strlen(json_string_value(s)) != json_string_length(s))
			return vs_err(err, 0, "%s.options[%zu]: must be a string", ip, i);
		if (parse_option(m, json_string_value(s), err) < 0)
			return -1;
	}
	if (m->type && strcmp(m->type, "bind") == 0)
		m->bind = true;
	if (!m->bind && !m->type)
		return vs_err(err, 0, "%s.type: is required unless options has bind or rbind",
			      ip);
	if (m->bind && !m->source)
		return vs_err(err, 0, "%s.source: is required for a bind mount", ip);
	if (spec_parse_id_mappings(o, ip, "uidMappings", &m->uid_mappings, &m->n_uid_mappings,
				   err) < 0 ||
	    spec_parse_id_mappings(o, ip, "gidMappings", &m->gid_mappings, &m->n_gid_mappings,
				   err) < 0)
		return -1;
	if (!m->n_uid_mappings != !m->n_gid_mappings)
		return vs_err(err, 0, "%s: an idmapped mount needs both uidMappings and "
				      "gidMappings", ip);
	if (m->n_uid_mappings) {
		m->idmap = true;
		m->idmap_recursive = m->idmap_recursive || m->recursive;
	}
	if (m->idmap && !m->bind)
		return vs_err(err, 0, "%s: only a bind mount can be idmapped here", ip);
	/* the spec makes relative bind sources relative to the bundle */
	if (m->bind && m->source[0] != '/' && bundle) {
		if (asprintf(&m->abs_source, "%s/%s", bundle, m->source) < 0)
			return vs_err(err, ENOMEM, "%s.source", ip);
		m->source = m->abs_source;
	}
	return 0;
}

int spec_parse_mounts(json_t *mounts, struct spec *s, vs_err_t *err)
{
	size_t n = json_array_size(mounts);
	s->mounts = calloc(n ? n : 1, sizeof(*s->mounts));
	if (!s->mounts)
		return vs_err(err, ENOMEM, "mounts");
	for (size_t i = 0; i < n; i++) {
		cleanup_free char *ip = vjson_index("mounts", i);
		/* count first so spec_free releases the data of a half-parsed entry */
		s->n_mounts++;
		if (parse_one(json_array_get(mounts, i), ip, s->bundle, &s->mounts[i], err) < 0)
			return -1;
	}
	return 0;
}
