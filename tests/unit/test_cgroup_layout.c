/* Layout detection from mountinfo fixtures: v1, v2 and hybrid hosts. */
#include <criterion/criterion.h>
#include <string.h>

#include "sandbox/cgroup_internal.h"

/* This machine's layout: v1 controllers one per mount, cgroup2 owning hugetlb. */
static const char *hybrid =
    "22 1 0:21 / / rw,relatime - overlay overlay rw\n"
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices\n"
    "37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n"
    "38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

/* systemd's classic v1 layout: co-mounted controllers, xattr and release_agent options,
 * optional fields before the separator, and a named hierarchy containers do not join. */
static const char *legacy =
    "25 20 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n"
    "26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid shared:10 - cgroup cgroup "
    "rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd\n"
    "28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:11 - cgroup cgroup rw,cpu,cpuacct\n"
    "29 25 0:26 / /sys/fs/cgroup/net_cls,net_prio rw shared:12 - cgroup cgroup "
    "rw,net_cls,net_prio\n"
    "30 25 0:27 / /sys/fs/cgroup/memory rw shared:13 - cgroup cgroup rw,memory\n"
    "31 25 0:28 / /sys/fs/cgroup/hugetlb rw shared:14 - cgroup cgroup rw,hugetlb\n"
    "32 25 0:29 / /sys/fs/cgroup/cpuset rw shared:15 - cgroup cgroup rw,cpuset,clone_children\n"
    "33 25 0:30 / /sys/fs/cgroup/pids rw shared:16 - cgroup cgroup rw,pids\n"
    "34 25 0:31 / /sys/fs/cgroup/freezer rw shared:17 - cgroup cgroup rw,freezer\n"
    "35 25 0:32 / /sys/fs/cgroup/devices rw shared:18 - cgroup cgroup rw,devices\n"
    "36 25 0:33 / /sys/fs/cgroup/blkio rw shared:19 - cgroup cgroup rw,blkio\n"
    "37 25 0:34 / /run/lxcfs/controllers/x rw - cgroup cgroup rw,name=lxcfs\n"
    /* a bind mount of the memory hierarchy elsewhere is the same hierarchy */
    "38 22 0:27 / /mnt/mem rw - cgroup cgroup rw,memory\n";

static const char *unified =
    "22 1 0:21 / / rw,relatime - ext4 /dev/vda1 rw\n"
    "29 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n";

static struct cg_layout *parse(const char *text, const char *v2ctrls)
{
	struct cg_layout *l = NULL;
	vs_err_t err = NULL;
	int rc = cg_layout_parse(text, v2ctrls, &l, &err);
	cr_assert_eq(rc, 0, "%s", err ? err->msg : "");
	return l;
}

static const struct cg_hier *by_name(const struct cg_layout *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->h[i].name, name) == 0)
			return &l->h[i];
	return NULL;
}

Test(cgroup_layout, hybrid_host)
{
	struct cg_layout *l = parse(hybrid, "hugetlb\n");
	cr_assert_eq(l->mode, CG_MODE_HYBRID);
	cr_assert_eq(l->n, 10);
	const struct cg_hier *u = by_name(l, "unified");
	cr_assert_not_null(u);
	cr_assert(u->v2);
	cr_assert_eq(u->ctrls, CG_BIT(CG_HUGETLB));
	cr_assert_str_eq(u->options, "");
	cr_assert_str_eq(u->mountpoint, "/sys/fs/cgroup/unified");
	cr_assert_eq(cg_layout_owner(l, CG_HUGETLB), u);
	const struct cg_hier *m = cg_layout_owner(l, CG_MEMORY);
	cr_assert_str_eq(m->name, "memory");
	cr_assert_str_eq(m->options, "memory");
	cr_assert_not(m->v2);
	const struct cg_hier *s = by_name(l, "systemd");
	cr_assert_eq(s->ctrls, 0);
	cr_assert_str_eq(s->options, "none,name=systemd");
	cr_assert_null(cg_layout_owner(l, CG_NET_CLS));
	cr_assert_str_eq(cg_layout_owner(l, CG_CPU)->name, "cpu");
	cr_assert_str_eq(cg_layout_owner(l, CG_CPUACCT)->name, "cpuacct");
	cg_layout_free(l);
}

Test(cgroup_layout, legacy_host_with_comounts)
{
	struct cg_layout *l = parse(legacy, NULL);
	cr_assert_eq(l->mode, CG_MODE_LEGACY);
	/* systemd + 10 controller hierarchies; lxcfs's named one is not joined, and the
	 * second mount of memory is not a second hierarchy */
	cr_assert_eq(l->n, 10);
	cr_assert_null(by_name(l, "x"));
	cr_assert_null(by_name(l, "mem"));
	const struct cg_hier *cpu = cg_layout_owner(l, CG_CPU);
	cr_assert_eq(cpu, cg_layout_owner(l, CG_CPUACCT));
	cr_assert_str_eq(cpu->name, "cpu,cpuacct");
	cr_assert_str_eq(cpu->options, "cpu,cpuacct");
	cr_assert_str_eq(cg_layout_owner(l, CG_NET_PRIO)->options, "net_cls,net_prio");
	cr_assert_str_eq(cg_layout_owner(l, CG_CPUSET)->options, "cpuset");
	cr_assert_str_eq(by_name(l, "systemd")->options, "none,name=systemd");
	cr_assert_str_eq(cg_layout_owner(l, CG_HUGETLB)->name, "hugetlb");
	cg_layout_free(l);
}

Test(cgroup_layout, unified_host)
{
	struct cg_layout *l = parse(unified, "cpuset cpu io memory hugetlb pids rdma misc\n");
	cr_assert_eq(l->mode, CG_MODE_UNIFIED);
	cr_assert_eq(l->n, 1);
	cr_assert_str_eq(l->h[0].name, "");
	cr_assert_str_eq(l->h[0].mountpoint, "/sys/fs/cgroup");
	cr_assert_eq(cg_layout_owner(l, CG_MEMORY), &l->h[0]);
	cr_assert_eq(cg_layout_owner(l, CG_BLKIO), &l->h[0]);
	cr_assert_null(cg_layout_owner(l, CG_DEVICES));
	cr_assert_null(cg_layout_owner(l, CG_FREEZER));
	cg_layout_free(l);
}

Test(cgroup_layout, escaped_mount_points)
{
	struct cg_layout *l =
	    parse("40 31 0:37 / /tmp/my\\040cgroups rw - cgroup cgroup rw,pids\n", NULL);
	cr_assert_str_eq(l->h[0].mountpoint, "/tmp/my cgroups");
	cr_assert_str_eq(l->h[0].name, "my cgroups");
	cg_layout_free(l);
}

Test(cgroup_layout, nothing_mounted)
{
	struct cg_layout *l = NULL;
	vs_err_t err = NULL;
	cr_assert_eq(cg_layout_parse("22 1 0:21 / / rw - ext4 /dev/vda1 rw\n", NULL, &l, &err), -1);
	cr_assert_str_eq(err->msg, "no cgroup hierarchy is mounted");
	vs_err_free(&err);
}

Test(cgroup_layout, malformed_line)
{
	struct cg_layout *l = NULL;
	vs_err_t err = NULL;
	cr_assert_eq(cg_layout_parse("22 1 0:21 / /sys/fs/cgroup rw cgroup2\n", NULL, &l, &err),
		     -1);
	cr_assert_str_eq(err->msg, "mountinfo: malformed line");
	vs_err_free(&err);
}

Test(cgroup_layout, this_machine)
{
	/* the real host: whatever it is, memory and pids must have an owner */
	struct cg_layout *l = NULL;
	vs_err_t err = NULL;
	cr_assert_eq(cg_layout_detect(&l, &err), 0, "%s", err ? err->msg : "");
	cr_assert_not_null(cg_layout_owner(l, CG_MEMORY));
	cr_assert_not_null(cg_layout_owner(l, CG_PIDS));
	cg_layout_free(l);
}
