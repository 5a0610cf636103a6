/* Device access rules on cgroup v1: devices.allow and devices.deny.
 *
 * The kernel keeps a default (allow or deny everything) and a list of exceptions, one per
 * type:major:minor pattern, and a deny only removes the exception of exactly its pattern.
 * So the rules are not replayed: they are evaluated here, last match wins like the v2
 * program, into the list the container should end with, and that list is written. On
 * `update` the change is made exception by exception (add what is new, then take away
 * what is gone), so an access allowed before and after is never refused in between; only
 * a change of the default itself resets the list. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "sandbox/cgroup_internal.h"

static void access_str(unsigned acc, char *buf)
{
	char *p = buf;
	if (acc & CG_ACC_READ)
		*p++ = 'r';
	if (acc & CG_ACC_WRITE)
		*p++ = 'w';
	if (acc & CG_ACC_MKNOD)
		*p++ = 'm';
	*p = '\0';
}

static void number(int64_t v, char *buf, size_t len)
{
	if (v < 0)
		snprintf(buf, len, "*");
	else
		snprintf(buf, len, "%lld", (long long)v);
}

size_t cg_dev_rule_v1(const struct cg_dev_rule *rule, char lines[2][CG_DEV_LINE])
{
	char acc[4], maj[24], min[24];
	if (rule->type == 'a' && rule->major < 0 && rule->minor < 0 && rule->access == CG_ACC_ALL) {
		snprintf(lines[0], CG_DEV_LINE, "a");
		return 1;
	}
	access_str(rule->access, acc);
	number(rule->major, maj, sizeof(maj));
	number(rule->minor, min, sizeof(min));
	/* the kernel reads any "a" line as "every device, every access": a narrower rule for
	 * both types becomes one line per type */
	if (rule->type == 'a') {
		snprintf(lines[0], CG_DEV_LINE, "b %s:%s %s", maj, min, acc);
		snprintf(lines[1], CG_DEV_LINE, "c %s:%s %s", maj, min, acc);
		return 2;
	}
	snprintf(lines[0], CG_DEV_LINE, "%c %s:%s %s", rule->type, maj, min, acc);
	return 1;
}

static bool is_everything(const struct cg_dev_rule *r)
{
	return r->type == 'a' && r->major < 0 && r->minor < 0 && r->access == CG_ACC_ALL;
}

static struct cg_dev_rule *find(struct cg_dev_list *l, const struct cg_dev_rule *r)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->ex[i].type == r->type && l->ex[i].major == r->major &&
		    l->ex[i].minor == r->minor)
			return &l->ex[i];
	return NULL;
}

/* Does rule wide match every device rule narrow names? */
static bool covers(const struct cg_dev_rule *wide, const struct cg_dev_rule *narrow)
{
	return (wide->type == 'a' || wide->type == narrow->type) &&
	       (wide->major < 0 || wide->major == narrow->major) &&
	       (wide->minor < 0 || wide->minor == narrow->minor);
}

/* One rule, last match wins. Against the default it adds an exception for exactly its
 * devices (merging access). With the default it takes its access away from every
 * exception it covers; when an exception is wider than the rule (allowed c 1:*, then
 * denied c 1:3), v1 cannot carve the hole and *lossy is set. */
static int emulate_line(struct cg_dev_list *l, bool allow, const struct cg_dev_rule *r, bool *lossy)
{
	if (is_everything(r)) {
		l->allow_all = allow;
		l->n = 0;
		return 0;
	}
	if (allow == l->allow_all) {
		for (size_t i = 0; i < l->n;) {
			struct cg_dev_rule *e = &l->ex[i];
			if (covers(r, e)) {
				e->access &= ~r->access;
			} else if (covers(e, r) && (e->access & r->access)) {
				*lossy = true;
			}
			if (e->access) {
				i++;
				continue;
			}
			memmove(e, e + 1, (l->n - i - 1) * sizeof(*e));
			l->n--;
		}
		return 0;
	}
	struct cg_dev_rule *e = find(l, r);
	if (e) {
		e->access |= r->access;
		return 0;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct cg_dev_rule *ex = realloc(l->ex, cap * sizeof(*ex));
		if (!ex)
			return -1;
		l->ex = ex;
		l->cap = cap;
	}
	l->ex[l->n] = *r;
	l->ex[l->n++].allow = !l->allow_all;
	return 0;
}

void cg_dev_list_free(struct cg_dev_list *l)
{
	free(l->ex);
	memset(l, 0, sizeof(*l));
}

int cg_dev_v1_emulate(const struct cg_dev_rule *rules, size_t n, struct cg_dev_list *out,
		      vs_err_t *err)
{
	memset(out, 0, sizeof(*out)); /* "a" in devices.deny: deny all, no exceptions */
	for (size_t i = 0; i < n; i++) {
		struct cg_dev_rule r = rules[i];
		/* a narrower "a" rule is its "b" and "c" halves, as cg_dev_rule_v1 writes it */
		bool split = r.type == 'a' && !is_everything(&r), lossy = false;
		for (int half = 0; half < (split ? 2 : 1); half++) {
			if (split)
				r.type = half ? 'c' : 'b';
			if (emulate_line(out, rules[i].allow, &r, &lossy) < 0) {
				cg_dev_list_free(out);
				return vs_err(err, ENOMEM, "device rules");
			}
		}
		if (lossy && !out->lossy)
			out->lossy = i + 1;
	}
	return 0;
}

/* devices.list: "a *:* rwm" alone when the default is allow (its exceptions are not
 * shown), else one line per allowed exception. */
static int read_list(const char *dir, struct cg_dev_list *out, vs_err_t *err)
{
	cleanup_free char *text = NULL;
	memset(out, 0, sizeof(*out));
	if (cg_read(dir, "devices.list", &text, err) < 0)
		return -1;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char type, maj[16], min[16], acc[8];
		if (sscanf(line, "%c %15[^:]:%15s %7s", &type, maj, min, acc) != 4)
			continue;
		struct cg_dev_rule r = {.allow = true, .type = type};
		r.major = strcmp(maj, "*") == 0 ? -1 : strtoll(maj, NULL, 10);
		r.minor = strcmp(min, "*") == 0 ? -1 : strtoll(min, NULL, 10);
		r.access = (strchr(acc, 'r') ? CG_ACC_READ : 0) |
			   (strchr(acc, 'w') ? CG_ACC_WRITE : 0) |
			   (strchr(acc, 'm') ? CG_ACC_MKNOD : 0);
		if (is_everything(&r)) {
			out->allow_all = true;
			out->n = 0;
			return 0;
		}
		bool lossy = false;
		if (emulate_line(out, true, &r, &lossy) < 0) {
			cg_dev_list_free(out);
			return vs_err(err, ENOMEM, "devices.list");
		}
	}
	return 0;
}

static int write_exception(const char *dir, const char *file, const struct cg_dev_rule *r,
			   unsigned access, vs_err_t *err)
{
	struct cg_dev_rule one = *r;
	one.access = access;
	char lines[2][CG_DEV_LINE];
	cg_dev_rule_v1(&one, lines);
	return cg_write(dir, file, lines[0], err);
}

int cg_devices_v1_apply(const char *dir, const struct cg_dev_rule *rules, size_t n, vs_err_t *err)
{
	struct cg_dev_list want, have;
	if (cg_dev_v1_emulate(rules, n, &want, err) < 0)
		return -1;
	if (read_list(dir, &have, err) < 0) {
		cg_dev_list_free(&want);
		return -1;
	}
	if (want.lossy)
		vs_warn(
		    "cgroup v1 cannot deny part of a device range allowed before it: devices[%zu] "
		    "is applied only where it names the same devices as the earlier allow rule",
		    want.lossy - 1);
	int rc = 0;
	const char *add = want.allow_all ? "devices.deny" : "devices.allow";
	const char *take = want.allow_all ? "devices.allow" : "devices.deny";
	if (want.allow_all || have.allow_all) {
		/* the default changes (or cannot be read): reset, then the exceptions */
		rc = cg_write(dir, want.allow_all ? "devices.allow" : "devices.deny", "a", err);
		for (size_t i = 0; rc == 0 && i < want.n; i++)
			rc = write_exception(dir, add, &want.ex[i], want.ex[i].access, err);
	} else {
		for (size_t i = 0; rc == 0 && i < want.n; i++)
			rc = write_exception(dir, add, &want.ex[i], want.ex[i].access, err);
		for (size_t i = 0; rc == 0 && i < have.n; i++) {
			const struct cg_dev_rule *keep = find(&want, &have.ex[i]);
			unsigned gone = have.ex[i].access & ~(keep ? keep->access : 0);
			if (gone)
				rc = write_exception(dir, take, &have.ex[i], gone, err);
		}
	}
	cg_dev_list_free(&want);
	cg_dev_list_free(&have);
	return rc;
}
