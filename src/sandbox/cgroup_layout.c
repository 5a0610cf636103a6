/* Which cgroup hierarchies are mounted, and which one owns each controller.
 *
 * Read from mountinfo rather than guessed from /sys/fs/cgroup: hosts mount v1
 * controllers alone or co-mounted ("cpu,cpuacct"), and hybrid hosts add a cgroup2
 * hierarchy (at /sys/fs/cgroup/unified) that owns whatever no v1 hierarchy took. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "sandbox/cgroup_internal.h"

static const struct {
	const char *v1, *v2;
} ctrl_names[CG_NCTRL] = {
    [CG_CPU] = {"cpu", "cpu"},
    [CG_CPUACCT] = {"cpuacct", NULL},
    [CG_CPUSET] = {"cpuset", "cpuset"},
    [CG_MEMORY] = {"memory", "memory"},
    [CG_DEVICES] = {"devices", NULL},
    [CG_FREEZER] = {"freezer", NULL},
    [CG_BLKIO] = {"blkio", "io"},
    [CG_PIDS] = {"pids", "pids"},
    [CG_HUGETLB] = {"hugetlb", "hugetlb"},
    [CG_NET_CLS] = {"net_cls", NULL},
    [CG_NET_PRIO] = {"net_prio", NULL},
    [CG_PERF_EVENT] = {"perf_event", "perf_event"},
    [CG_RDMA] = {"rdma", "rdma"},
    [CG_MISC] = {"misc", "misc"},
};

const char *cg_ctrl_name(enum cg_ctrl c)
{
	return c < CG_NCTRL ? ctrl_names[c].v1 : "?";
}

const char *cg_ctrl_v2_name(enum cg_ctrl c)
{
	return c < CG_NCTRL ? ctrl_names[c].v2 : NULL;
}

int cg_ctrl_from_name(const char *name)
{
	for (int i = 0; i < CG_NCTRL; i++)
		if (strcmp(name, ctrl_names[i].v1) == 0 ||
		    (ctrl_names[i].v2 && strcmp(name, ctrl_names[i].v2) == 0))
			return i;
	return -1;
}

const char *cg_mode_name(enum cg_mode m)
{
	switch (m) {
	case CG_MODE_LEGACY:
		return "legacy";
	case CG_MODE_HYBRID:
		return "hybrid";
	case CG_MODE_UNIFIED:
		return "unified";
	}
	return "?";
}

static void hier_clear(struct cg_hier *h)
{
	free(h->mountpoint);
	free(h->root);
	free(h->name);
	free(h->options);
	memset(h, 0, sizeof(*h));
}

void cg_layout_free(struct cg_layout *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		hier_clear(&l->h[i]);
	free(l->h);
	free(l);
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *w = s;
	for (char *r = s; *r;) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') << 6 | (r[2] - '0') << 3 | (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

static uint32_t parse_v2_controllers(const char *text)
{
	uint32_t ctrls = 0;
	cleanup_free char *copy = strdup(text ? text : "");
	if (!copy)
		return 0;
	char *save = NULL;
	for (char *tok = strtok_r(copy, " \t\n", &save); tok;
	     tok = strtok_r(NULL, " \t\n", &save)) {
		int c = cg_ctrl_from_name(tok);
		if (c >= 0 && cg_ctrl_v2_name(c) && strcmp(cg_ctrl_v2_name(c), tok) == 0)
			ctrls |= CG_BIT(c);
	}
	return ctrls;
}

/* From the super options of a v1 mount ("rw,cpu,cpuacct" or "rw,xattr,name=systemd"):
 * the controllers it binds and the mount data that recreates it. *keep is false for a
 * named hierarchy other than systemd's, which containers do not join (as runc). */
static int parse_v1_options(const char *superopts, uint32_t *ctrls, char **options, bool *keep)
{
	cleanup_free char *copy = strdup(superopts);
	cleanup_free char *opts = calloc(1, strlen(superopts) + 8);
	if (!copy || !opts)
		return -1;
	const char *name = NULL;
	*ctrls = 0;
	char *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (vs_str_has_prefix(tok, "name=")) {
			name = tok;
			continue;
		}
		int c = cg_ctrl_from_name(tok);
		if (c < 0 || strcmp(cg_ctrl_name(c), tok) != 0)
			continue; /* rw, relatime, xattr, clone_children, ... */
		*ctrls |= CG_BIT(c);
		if (*opts)
			strcat(opts, ",");
		strcat(opts, tok);
	}
	if (name) {
		strcat(opts, *opts ? "," : "none,");
		strcat(opts, name);
	}
	*keep = *ctrls != 0 || (name && strcmp(name, "name=systemd") == 0);
	*options = steal_ptr(opts);
	return 0;
}

static bool under_sys_fs_cgroup(const char *mnt)
{
	return strcmp(mnt, "/sys/fs/cgroup") == 0 || vs_str_has_prefix(mnt, "/sys/fs/cgroup/");
}

static char *mount_name(const char *mnt)
{
	if (strcmp(mnt, "/sys/fs/cgroup") == 0)
		return strdup("");
	const char *slash = strrchr(mnt, '/');
	return strdup(slash ? slash + 1 : mnt);
}

struct mi_line {
	char *devid, *root, *mountpoint, *fstype, *superopts;
};

/* Splits one mountinfo line in place; 0 when it is not a cgroup mount. */
static int split_line(char *line, struct mi_line *m)
{
	char *f[6] = {0};
	char *save = NULL;
	int i = 0;
	for (char *tok = strtok_r(line, " ", &save); tok && i < 5; tok = strtok_r(NULL, " ", &save))
		f[i++] = tok;
	if (i < 5)
		return -1;
	/* optional fields end at a lone "-", then fstype, source, super options */
	char *tok;
	while ((tok = strtok_r(NULL, " ", &save)) && strcmp(tok, "-") != 0)
		;
	if (!tok)
		return -1;
	char *fstype = strtok_r(NULL, " ", &save);
	char *source = strtok_r(NULL, " ", &save);
	char *superopts = strtok_r(NULL, " ", &save);
	if (!fstype || !source || !superopts)
		return -1;
	if (strcmp(fstype, "cgroup") != 0 && strcmp(fstype, "cgroup2") != 0)
		return 0;
	m->devid = f[2];
	m->root = f[3];
	m->mountpoint = f[4];
	m->fstype = fstype;
	m->superopts = superopts;
	unescape(m->root);
	unescape(m->mountpoint);
	return 1;
}

int cg_layout_parse(const char *mountinfo, const char *v2_controllers, struct cg_layout **out,
		    vs_err_t *err)
{
	cleanup_free char *text = strdup(mountinfo);
	struct cg_layout *l = calloc(1, sizeof(*l));
	/* one device id per kept hierarchy, to skip bind mounts of the same hierarchy */
	char **ids = NULL;
	if (!text || !l)
		goto oom;
	size_t cap = 0;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct mi_line m;
		int rc = split_line(line, &m);
		if (rc < 0) {
			vs_err(err, 0, "mountinfo: malformed line");
			goto fail;
		}
		if (rc == 0)
			continue;
		size_t dup = l->n;
		for (size_t i = 0; i < l->n; i++)
			if (strcmp(ids[i], m.devid) == 0)
				dup = i;
		if (dup < l->n) {
			/* the same hierarchy mounted twice: prefer the /sys/fs/cgroup one */
			if (under_sys_fs_cgroup(l->h[dup].mountpoint) ||
			    !under_sys_fs_cgroup(m.mountpoint))
				continue;
			char *mp = strdup(m.mountpoint), *root = strdup(m.root);
			char *name = mount_name(m.mountpoint);
			if (!mp || !root || !name) {
				free(mp);
				free(root);
				free(name);
				goto oom;
			}
			free(l->h[dup].mountpoint);
			free(l->h[dup].root);
			free(l->h[dup].name);
			l->h[dup].mountpoint = mp;
			l->h[dup].root = root;
			l->h[dup].name = name;
			continue;
		}
		struct cg_hier h = {.v2 = strcmp(m.fstype, "cgroup2") == 0};
		bool keep = true;
		if (h.v2) {
			cleanup_free char *ctl = NULL;
			if (!v2_controllers) {
				cleanup_free char *path = NULL;
				if (asprintf(&path, "%s/cgroup.controllers", m.mountpoint) < 0)
					goto oom;
				vs_err_t ignored = NULL;
				if (vs_read_file(path, 4096, &ctl, NULL, &ignored) < 0)
					vs_err_free(&ignored);
			}
			h.ctrls = parse_v2_controllers(v2_controllers ? v2_controllers : ctl);
			h.options = strdup("");
		} else if (parse_v1_options(m.superopts, &h.ctrls, &h.options, &keep) < 0) {
			goto oom;
		}
		if (!keep) {
			free(h.options);
			continue;
		}
		h.mountpoint = strdup(m.mountpoint);
		h.root = strdup(m.root);
		h.name = mount_name(m.mountpoint);
		if (l->n == cap) {
			cap = cap ? cap * 2 : 16;
			struct cg_hier *nh = realloc(l->h, cap * sizeof(*nh));
			char **nids = realloc(ids, cap * sizeof(*nids));
			if (nh)
				l->h = nh;
			if (nids)
				ids = nids;
			if (!nh || !nids) {
				hier_clear(&h);
				goto oom;
			}
		}
		ids[l->n] = strdup(m.devid);
		l->h[l->n++] = h;
		if (!h.mountpoint || !h.root || !h.name || !h.options || !ids[l->n - 1])
			goto oom;
	}

	bool v1 = false, v2 = false;
	for (size_t i = 0; i < l->n; i++) {
		v1 |= !l->h[i].v2;
		v2 |= l->h[i].v2;
	}
	if (!v1 && !v2) {
		vs_err(err, 0, "no cgroup hierarchy is mounted");
		goto fail;
	}
	l->mode = !v1 ? CG_MODE_UNIFIED : v2 ? CG_MODE_HYBRID : CG_MODE_LEGACY;
	for (size_t i = 0; i < l->n; i++)
		free(ids[i]);
	free(ids);
	*out = l;
	return 0;
oom:
	vs_err(err, ENOMEM, "cgroup layout");
fail:
	for (size_t i = 0; l && i < l->n; i++)
		free(ids[i]);
	free(ids);
	cg_layout_free(l);
	return -1;
}

int cg_layout_detect(struct cg_layout **out, vs_err_t *err)
{
	cleanup_free char *text = NULL;
	if (vs_read_file("/proc/self/mountinfo", 16 << 20, &text, NULL, err) < 0)
		return -1;
	return cg_layout_parse(text, NULL, out, err);
}

const struct cg_hier *cg_layout_owner(const struct cg_layout *l, enum cg_ctrl c)
{
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < l->n; i++)
			if (l->h[i].v2 == (pass == 1) && (l->h[i].ctrls & CG_BIT(c)))
				return &l->h[i];
	return NULL;
}
