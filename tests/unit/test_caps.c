/* process.capabilities: parsing names every bad field; in a forked root child the init's
 * sequence (caps_prepare, setuid, caps_finish) leaves exactly the sets asked for. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>

#include "base/error.h"
#include "oci/caps.h"

#define BIT(c) (1ULL << (c))

static json_t *load(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	cr_assert_not_null(j, "test JSON does not parse: %s: %s", jerr.text, text);
	return j;
}

static struct caps_spec parse_ok(const char *text)
{
	json_t *j = load(text);
	struct caps_spec c;
	vs_err_t err = NULL;
	cr_assert_eq(caps_parse(j, "process.capabilities", &c, &err), 0, "%s", err ? err->msg : "");
	json_decref(j);
	return c;
}

static void expect_error(const char *text, const char *msg)
{
	json_t *j = load(text);
	struct caps_spec c;
	vs_err_t err = NULL;
	cr_assert_eq(caps_parse(j, "process.capabilities", &c, &err), -1, "accepted %s", text);
	cr_assert_str_eq(err->msg, msg);
	vs_err_free(&err);
	json_decref(j);
}

Test(caps_parse, all_five_sets)
{
	struct caps_spec c = parse_ok(
	    "{\"bounding\": [\"CAP_CHOWN\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\", "
	    "\"CAP_SYS_ADMIN\", \"CAP_CHECKPOINT_RESTORE\"], \"effective\": [\"CAP_KILL\"], "
	    "\"permitted\": [\"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"], \"inheritable\": "
	    "[\"CAP_NET_BIND_SERVICE\", \"CAP_CHOWN\"], \"ambient\": "
	    "[\"CAP_NET_BIND_SERVICE\"]}");
	cr_assert(c.present);
	cr_assert_eq(c.bounding, BIT(CAP_CHOWN) | BIT(CAP_KILL) | BIT(CAP_NET_BIND_SERVICE) |
				     BIT(CAP_SYS_ADMIN) | BIT(40));
	cr_assert_eq(c.effective, BIT(CAP_KILL));
	cr_assert_eq(c.permitted, BIT(CAP_KILL) | BIT(CAP_NET_BIND_SERVICE));
	cr_assert_eq(c.inheritable, BIT(CAP_NET_BIND_SERVICE) | BIT(CAP_CHOWN));
	cr_assert_eq(c.ambient, BIT(CAP_NET_BIND_SERVICE));
}

Test(caps_parse, absent_and_empty)
{
	struct caps_spec c;
	vs_err_t err = NULL;
	cr_assert_eq(caps_parse(NULL, "process.capabilities", &c, &err), 0);
	cr_assert_not(c.present);
	c = parse_ok("{}");
	cr_assert(c.present);
	cr_assert_eq(c.bounding | c.effective | c.permitted | c.inheritable | c.ambient, 0);
	c = parse_ok("{\"bounding\": null, \"effective\": []}");
	cr_assert(c.present);
	cr_assert_eq(c.bounding | c.effective, 0);
}

Test(caps_parse, errors_name_the_field)
{
	expect_error("[]", "process.capabilities: must be an object");
	expect_error("{\"bounding\": \"CAP_KILL\"}",
		     "process.capabilities.bounding: must be an array");
	expect_error("{\"bounding\": [\"CAP_KILL\", \"CAP_CHOWN\", \"CAP_SETUID\", \"CAP_FOO\"]}",
		     "process.capabilities.bounding[3]: unknown capability `CAP_FOO`");
	expect_error("{\"permitted\": [\"kill\"]}",
		     "process.capabilities.permitted[0]: unknown capability `kill`");
	expect_error("{\"ambient\": [1]}", "process.capabilities.ambient[0]: must be a string");
	expect_error("{\"inheritable\": [\"CAP_KILL\"]}",
		     "process.capabilities.inheritable: CAP_KILL is not in "
		     "process.capabilities.bounding");
	expect_error("{\"effective\": [\"CAP_KILL\"], \"permitted\": [\"CAP_CHOWN\"]}",
		     "process.capabilities.effective: CAP_KILL is not in "
		     "process.capabilities.permitted");
}

Test(caps_parse, capabilities_newer_than_the_kernel_are_skipped)
{
	/* as on a kernel whose last capability is CAP_PERFMON (38, Linux 5.8) */
	caps_set_last_cap(CAP_PERFMON);
	struct caps_spec c =
	    parse_ok("{\"bounding\": [\"CAP_KILL\", \"CAP_BPF\", "
		     "\"CAP_CHECKPOINT_RESTORE\", \"CAP_PERFMON\"], "
		     "\"effective\": [\"CAP_BPF\"], \"permitted\": [\"CAP_BPF\"]}");
	cr_assert_eq(c.bounding, BIT(CAP_KILL) | BIT(CAP_PERFMON));
	cr_assert_eq(c.effective, 0);
	cr_assert_eq(c.permitted, 0);
	/* a name no kernel has is still an error */
	expect_error("{\"bounding\": [\"CAP_BPF\", \"CAP_TIME_TRAVEL\"]}",
		     "process.capabilities.bounding[1]: unknown capability `CAP_TIME_TRAVEL`");
	caps_set_last_cap(-1);
	c = parse_ok("{\"bounding\": [\"CAP_BPF\"]}");
	cr_assert_eq(c.bounding, BIT(CAP_BPF));
}

Test(caps_parse, unraisable_ambient_is_dropped)
{
	struct caps_spec c = parse_ok("{\"bounding\": [\"CAP_KILL\"], \"permitted\": "
				      "[\"CAP_KILL\"], \"ambient\": [\"CAP_KILL\"]}");
	cr_assert_eq(c.ambient, 0);
}

Test(caps_names, table_round_trips)
{
	json_t *all = caps_all_names_json();
	cr_assert_eq(json_array_size(all), 41);
	size_t i;
	json_t *v;
	json_array_foreach(all, i, v)
	{
		cr_assert_eq(caps_from_name(json_string_value(v)), (int)i);
		cr_assert_str_eq(caps_name((int)i), json_string_value(v));
	}
	cr_assert_str_eq(caps_name(CAP_SYS_ADMIN), "CAP_SYS_ADMIN");
	cr_assert_str_eq(caps_name(CAP_BPF), "CAP_BPF");
	cr_assert_null(caps_name(64));
	cr_assert_null(caps_name(-1));
	json_decref(all);

	json_t *def = caps_default_names_json();
	cr_assert_eq(json_array_size(def), 3);
	cr_assert_str_eq(json_string_value(json_array_get(def, 0)), "CAP_AUDIT_WRITE");
	cr_assert_str_eq(json_string_value(json_array_get(def, 1)), "CAP_KILL");
	cr_assert_str_eq(json_string_value(json_array_get(def, 2)), "CAP_NET_BIND_SERVICE");
	json_decref(def);

	char buf[16] = {0};
	int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_gt(read(fd, buf, sizeof(buf) - 1), 0);
	close(fd);
	cr_assert_eq(caps_last_cap(), atoi(buf));
}

/* ------------------------------------------------------------------ in a child */

struct sets {
	uint64_t eff, prm, inh, bnd, amb;
	uint64_t get_eff, get_prm, get_inh; /* capget */
	uid_t uid;
	int err;
	char msg[200];
};

static uint64_t status_field(const char *status, const char *key)
{
	const char *p = strstr(status, key);
	return p ? strtoull(p + strlen(key), NULL, 16) : ~0ULL;
}

static void read_sets(struct sets *s)
{
	char buf[4096] = {0};
	int fd = open("/proc/self/status", O_RDONLY);
	if (fd >= 0) {
		if (read(fd, buf, sizeof(buf) - 1) < 0)
			buf[0] = 0;
		close(fd);
	}
	s->eff = status_field(buf, "CapEff:");
	s->prm = status_field(buf, "CapPrm:");
	s->inh = status_field(buf, "CapInh:");
	s->bnd = status_field(buf, "CapBnd:");
	s->amb = status_field(buf, "CapAmb:");
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &hdr, d) == 0) {
		s->get_eff = (uint64_t)d[1].effective << 32 | d[0].effective;
		s->get_prm = (uint64_t)d[1].permitted << 32 | d[0].permitted;
		s->get_inh = (uint64_t)d[1].inheritable << 32 | d[0].inheritable;
	}
	s->uid = getuid();
}

/* Runs the init's sequence in a child as root: caps_prepare, setuid(uid) if uid != 0,
 * caps_finish, then check() (if any) whose value is stored in err. */
static struct sets apply_in_child(const struct caps_spec *c, uid_t uid, int (*check)(void))
{
	struct sets *shared = mmap(NULL, sizeof(struct sets), PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(shared, MAP_FAILED);
	memset(shared, 0, sizeof(*shared));
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		vs_err_t err = NULL;
		if (caps_prepare(c, &err) < 0)
			goto fail;
		if (uid && (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0)) {
			vs_err(&err, errno, "setuid");
			goto fail;
		}
		if (caps_finish(c, &err) < 0)
			goto fail;
		read_sets(shared);
		shared->err = check ? check() : 0;
		_exit(0);
	fail:
		snprintf(shared->msg, sizeof(shared->msg), "%s", err->msg);
		_exit(1);
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed: %s", shared->msg);
	struct sets out = *shared;
	munmap(shared, sizeof(*shared));
	return out;
}

Test(caps_apply, exact_sets_after_setuid)
{
	struct caps_spec c = parse_ok(
	    "{\"bounding\": [\"CAP_CHOWN\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\", "
	    "\"CAP_NET_RAW\", \"CAP_SETUID\"], \"effective\": [\"CAP_KILL\", "
	    "\"CAP_NET_BIND_SERVICE\"], \"permitted\": [\"CAP_KILL\", \"CAP_NET_BIND_SERVICE\", "
	    "\"CAP_NET_RAW\"], \"inheritable\": [\"CAP_NET_BIND_SERVICE\", \"CAP_NET_RAW\"], "
	    "\"ambient\": [\"CAP_NET_BIND_SERVICE\"]}");
	struct sets s = apply_in_child(&c, 1000, NULL);
	cr_assert_eq(s.uid, 1000);
	cr_assert_eq(s.bnd, c.bounding, "CapBnd %#llx", (unsigned long long)s.bnd);
	cr_assert_eq(s.eff, c.effective, "CapEff %#llx", (unsigned long long)s.eff);
	cr_assert_eq(s.prm, c.permitted, "CapPrm %#llx", (unsigned long long)s.prm);
	cr_assert_eq(s.inh, c.inheritable, "CapInh %#llx", (unsigned long long)s.inh);
	cr_assert_eq(s.amb, BIT(CAP_NET_BIND_SERVICE), "CapAmb %#llx", (unsigned long long)s.amb);
	cr_assert_eq(s.get_eff, c.effective);
	cr_assert_eq(s.get_prm, c.permitted);
	cr_assert_eq(s.get_inh, c.inheritable);
}

Test(caps_apply, runc_default_set_as_root)
{
	const char *set = "[\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"]";
	char buf[512];
	snprintf(buf, sizeof(buf),
		 "{\"bounding\": %s, \"effective\": %s, \"permitted\": %s, \"ambient\": %s}", set,
		 set, set, set);
	struct caps_spec c = parse_ok(buf);
	struct sets s = apply_in_child(&c, 0, NULL);
	uint64_t want = BIT(CAP_AUDIT_WRITE) | BIT(CAP_KILL) | BIT(CAP_NET_BIND_SERVICE);
	cr_assert_eq(s.uid, 0);
	cr_assert_eq(s.bnd, want);
	cr_assert_eq(s.eff, want);
	cr_assert_eq(s.prm, want);
	cr_assert_eq(s.inh, 0);
	cr_assert_eq(s.amb, 0); /* not inheritable: dropped at parse */
}

static int chown_fails(void)
{
	char path[] = "/tmp/vessel-caps-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return 10;
	int rc = fchown(fd, 1234, 1234);
	int e = errno;
	close(fd);
	unlink(path);
	if (rc == 0)
		return 11;
	return e == EPERM ? 0 : 12;
}

static int chown_works(void)
{
	char path[] = "/tmp/vessel-caps-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return 10;
	int rc = fchown(fd, 1234, 1234);
	close(fd);
	unlink(path);
	return rc == 0 ? 0 : 11;
}

Test(caps_apply, dropped_chown_fails_as_root)
{
	/* still uid 0, but without CAP_CHOWN chown to another owner is refused */
	const char *set = "[\"CAP_DAC_OVERRIDE\", \"CAP_FOWNER\", \"CAP_KILL\"]";
	char buf[512];
	snprintf(buf, sizeof(buf), "{\"bounding\": %s, \"effective\": %s, \"permitted\": %s}", set,
		 set, set);
	struct caps_spec c = parse_ok(buf);
	struct sets s = apply_in_child(&c, 0, chown_fails);
	cr_assert_eq(s.err, 0, "chown check %d", s.err);
	cr_assert_eq(s.uid, 0);

	/* and the same check passes with CAP_CHOWN kept: the test can tell */
	set = "[\"CAP_CHOWN\", \"CAP_KILL\"]";
	snprintf(buf, sizeof(buf), "{\"bounding\": %s, \"effective\": %s, \"permitted\": %s}", set,
		 set, set);
	c = parse_ok(buf);
	s = apply_in_child(&c, 0, chown_works);
	cr_assert_eq(s.err, 0, "chown check %d", s.err);
}

Test(caps_apply, absent_capabilities_change_nothing)
{
	struct caps_spec c = {0};
	struct sets before = {0};
	read_sets(&before);
	struct sets s = apply_in_child(&c, 0, NULL);
	cr_assert_eq(s.bnd, before.bnd);
	cr_assert_eq(s.eff, before.eff);
	cr_assert_eq(s.prm, before.prm);
}

Test(caps_apply, permitted_the_runtime_lacks_is_named)
{
	/* find a capability this test process does not hold (the sandbox may lack some) */
	struct sets me = {0};
	read_sets(&me);
	int missing = -1;
	for (int cap = 0; cap <= caps_last_cap(); cap++)
		if (!(me.prm & BIT(cap)))
			missing = cap;
	if (missing < 0) {
		/* full set: drop one in a child first is what we test instead */
		missing = CAP_SYS_RESOURCE;
	}
	char buf[256];
	snprintf(buf, sizeof(buf), "{\"bounding\": [\"%s\"], \"permitted\": [\"%s\"]}",
		 caps_name(missing), caps_name(missing));
	struct caps_spec c = parse_ok(buf);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		/* make sure the child lacks it even when the test runs with every cap */
		struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
		struct __user_cap_data_struct d[2];
		syscall(SYS_capget, &hdr, d);
		d[missing / 32].permitted &= ~(1U << (missing % 32));
		d[missing / 32].effective &= ~(1U << (missing % 32));
		d[missing / 32].inheritable &= ~(1U << (missing % 32));
		if (syscall(SYS_capset, &hdr, d) < 0)
			_exit(2);
		vs_err_t err = NULL;
		if (caps_prepare(&c, &err) < 0 || caps_finish(&c, &err) == 0)
			_exit(3);
		char want[128];
		snprintf(want, sizeof(want), "capset: %s is not held by the runtime",
			 caps_name(missing));
		_exit(strncmp(err->msg, want, strlen(want)) == 0 ? 0 : 4);
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status));
	cr_assert_eq(WEXITSTATUS(status), 0);
}
