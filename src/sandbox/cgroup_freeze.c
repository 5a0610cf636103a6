/* Pause and resume: the v1 freezer where one is mounted, else cgroup v2's cgroup.freeze. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "sandbox/cgroup_internal.h"

#define FREEZE_WAIT_MS 5000

static struct cg_dir *freezer_dir(struct cgroup *cg)
{
	struct cg_dir *d = cg_dir_for(cg, CG_FREEZER);
	if (d)
		return d;
	d = cg_dir_v2(cg);
	return d && cg_file_exists(d->dir, "cgroup.freeze") ? d : NULL;
}

enum { THAWED, FROZEN, CHANGING };

static int freeze_state(struct cg_dir *d, vs_err_t *err)
{
	if (d->v2) {
		uint64_t v = 0;
		if (cg_read_key(d->dir, "cgroup.events", "frozen", &v) < 0)
			return vs_err(err, EIO, "read `%s/cgroup.events`", d->dir);
		return v == 1 ? FROZEN : THAWED;
	}
	cleanup_free char *state = NULL;
	if (cg_read(d->dir, "freezer.state", &state, err) < 0)
		return -1;
	if (vs_str_has_prefix(state, "FROZEN"))
		return FROZEN;
	return vs_str_has_prefix(state, "THAWED") ? THAWED : CHANGING;
}

int cg_freezer_write(struct cg_dir *d, bool frozen, vs_err_t *err)
{
	if (d->v2)
		return cg_write(d->dir, "cgroup.freeze", frozen ? "1" : "0", err);
	return cg_write(d->dir, "freezer.state", frozen ? "FROZEN" : "THAWED", err);
}

int cgroup_freeze(struct cgroup *cg, bool frozen, vs_err_t *err)
{
	struct cg_dir *d = freezer_dir(cg);
	if (!d)
		return vs_err(err, 0, "cannot %s: no freezer controller in any cgroup hierarchy",
			      frozen ? "pause" : "resume");
	int64_t deadline = cg_now_ms() + FREEZE_WAIT_MS;
	for (unsigned round = 0;; round++) {
		/* v1 can stay in FREEZING while tasks fork; writing FROZEN again retries them */
		if (round % 50 == 0 && cg_freezer_write(d, frozen, err) < 0)
			return -1;
		int state = freeze_state(d, err);
		if (state < 0)
			return -1;
		if (state == (frozen ? FROZEN : THAWED))
			return 0;
		if (cg_now_ms() >= deadline)
			break;
		usleep(1000);
	}
	if (frozen) {
		vs_err_t e = NULL;
		cg_freezer_write(d, false, &e);
		vs_err_free(&e);
	}
	return vs_err(err, ETIMEDOUT, "%s `%s`", frozen ? "freeze" : "thaw", d->dir);
}
