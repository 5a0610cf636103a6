/* The source's side: a worker thread that sends the VM away while it runs. Pre-copy: all
 * of RAM with KVM's dirty log on, then rounds of the pages written meanwhile (the guest's,
 * from KVM's log, and the devices', from the VMM's bitmap) until what is left would go in
 * under the downtime asked for at the bandwidth measured, or the timeout decides; then the
 * controller pauses the VM and hands over its state, the last pages and the state go, and
 * the destination says whether it has the VM. Local (--local), the RAM's memfd goes
 * instead of its pages and the VM stops at once. The thread never acts on the VM itself
 * beyond reading RAM and the dirty log: pause, state and resume are the controller's,
 * asked through notify_fd (struct mig_controller). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "vmm/boot/cpu.h"
#include "vmm/migration/migration.h"
#include "vmm/seccomp.h"
#include "vmm/vm.h"

enum phase { PH_ACTIVE, PH_COMPLETED, PH_FAILED };
enum request { REQ_NONE, REQ_STOP, REQ_RESUME };

struct mig_sender {
	struct vm *vm;
	struct mig_send_opts o;
	char *url, *config;
	struct mig_controller ctl;
	int notify_fd;
	int fd; /* the connection (-1 before) */
	pthread_t thread;
	bool had_tracking; /* the VM tracked dirty pages for Diff snapshots before */

	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum request req;
	bool req_done;
	int req_rc;
	uint8_t *state;
	size_t state_len;
	char req_error[512];
	bool abort;   /* the controller goes away: give up at once */
	bool stopped; /* stop_and_save succeeded: a failure must resume */
	enum phase phase;
	bool reported; /* finished() was called */
	char error[1024];
	/* figures */
	unsigned rounds;
	uint64_t bytes, pages, last_dirty_pages;
	double bandwidth; /* bytes/s, last measured */
	double total_ms, downtime_ms, estimated_ms;
};

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static uint64_t bitmap_words(const struct vm *vm)
{
	return (guest_mem_npages(&vm->mem) + 63) / 64;
}

/* KVM's log of the guest's writes ORed with the VMM's of its devices', both cleared. */
static int take_dirty(struct mig_sender *s, uint64_t *b, vs_err_t *err)
{
	if (vm_take_dirty_log(s->vm, b, err) < 0)
		return -1;
	guest_mem_take_dirty(&s->vm->mem, b);
	return 0;
}

static bool zero_page(const uint8_t *p)
{
	static const uint8_t zero[MIG_PAGE];
	return memcmp(p, zero, MIG_PAGE) == 0;
}

/* One MEMORY message per run of at most MIG_MAX_PAGES_PER_MSG pages, sent straight from
 * guest RAM. skip_zero: the first round (the destination's RAM starts as zeros). With a
 * deadline (ms on the monotonic clock, 0: none), a cancel-on-timeout migration stops
 * mid-round when it passes. */
static int send_pages(struct mig_sender *s, const uint64_t *b, bool all, bool skip_zero,
		      double deadline, vs_err_t *err)
{
	uint64_t n = guest_mem_npages(&s->vm->mem);
	const uint8_t *ram = s->vm->mem.host;
	uint64_t pg = 0;
	while (pg < n) {
		bool want = all || (b[pg / 64] >> (pg % 64) & 1);
		if (want && skip_zero && zero_page(ram + pg * MIG_PAGE))
			want = false;
		if (!want) {
			pg++;
			continue;
		}
		uint64_t first = pg;
		while (pg < n && pg - first < MIG_MAX_PAGES_PER_MSG &&
		       (all || (b[pg / 64] >> (pg % 64) & 1)) &&
		       !(skip_zero && zero_page(ram + pg * MIG_PAGE)))
			pg++;
		uint8_t hdr[MIG_MEMORY_FIXED] = {0};
		uint64_t off = first * MIG_PAGE;
		uint32_t cnt = (uint32_t)(pg - first);
		for (int i = 0; i < 8; i++)
			hdr[i] = (uint8_t)(off >> (8 * i));
		for (int i = 0; i < 4; i++)
			hdr[8 + i] = (uint8_t)(cnt >> (8 * i));
		if (mig_send_msg(s->fd, MIG_MEMORY, hdr, sizeof(hdr), ram + off,
				 (size_t)cnt * MIG_PAGE, err) < 0)
			return -1;
		pthread_mutex_lock(&s->lock); /* GET /migrate reads the figures */
		s->bytes += MIG_HEADER_SIZE + sizeof(hdr) + (uint64_t)cnt * MIG_PAGE;
		s->pages += cnt;
		bool stop = s->abort;
		pthread_mutex_unlock(&s->lock);
		if (stop)
			return vs_err(err, 0, "the VM stopped");
		if (deadline > 0 && now_ms() > deadline)
			return vs_err(err, 0,
				      "timed out (--timeout-s %u) during round %u; cancelled",
				      s->o.timeout_s, s->rounds + 1);
	}
	return 0;
}

static uint64_t count_bits(const uint64_t *b, uint64_t words)
{
	uint64_t c = 0;
	for (uint64_t i = 0; i < words; i++)
		c += (uint64_t)__builtin_popcountll(b[i]);
	return c;
}

/* Asks the controller for r and waits for its answer. */
static int ask(struct mig_sender *s, enum request r, vs_err_t *err)
{
	pthread_mutex_lock(&s->lock);
	s->req = r;
	s->req_done = false;
	pthread_mutex_unlock(&s->lock);
	uint64_t one = 1;
	if (write(s->notify_fd, &one, sizeof(one)) != sizeof(one))
		return vs_err(err, errno, "wake the controller");
	pthread_mutex_lock(&s->lock);
	while (!s->req_done && !s->abort)
		pthread_cond_wait(&s->cond, &s->lock);
	int rc = s->req_done ? s->req_rc : -1;
	bool ab = !s->req_done;
	pthread_mutex_unlock(&s->lock);
	if (ab)
		return vs_err(err, 0, "the VM stopped");
	if (rc < 0)
		return vs_err(err, 0, "%s", s->req_error);
	return 0;
}

/* A reply from the destination: ACK, or its ERROR's text. */
static int expect_ack(struct mig_sender *s, const char *after, vs_err_t *err)
{
	uint8_t h[MIG_HEADER_SIZE];
	struct mig_header mh;
	if (mig_read_full(s->fd, h, sizeof(h), err) < 0 || mig_parse_header(h, &mh, err) < 0)
		return vs_err_wrap(err, "the destination's answer to %s", after);
	if (mh.type == MIG_ACK)
		return 0;
	if (mh.type != MIG_ERROR)
		return vs_err(err, 0, "the destination answered %s with %s", after,
			      mig_type_name(mh.type));
	char msg[MIG_ERROR_MAX + 1];
	if (mig_read_full(s->fd, msg, mh.len, err) < 0)
		return vs_err_wrap(err, "the destination's error");
	msg[mh.len] = '\0';
	for (size_t i = 0; i < mh.len; i++)
		if ((unsigned char)msg[i] < 0x20)
			msg[i] = ' ';
	return vs_err(err, 0, "the destination refused: %s", msg);
}

static int send_hello(struct mig_sender *s, vs_err_t *err)
{
	struct kvm_cpuid_entry2 ent[MIG_CPUID_MAX];
	int n = cpuid_build(s->vm->cpuid->entries, s->vm->cpuid->nent, 0, s->vm->ncpus, ent,
			    MIG_CPUID_MAX);
	if (n <= 0)
		return vs_err(err, 0, "the guest's CPUID table");
	struct mig_hello h = {
	    .version = MIG_VERSION,
	    .ncpus = s->vm->ncpus,
	    .ram_size = s->vm->mem.ram_size,
	    .ncpuid = (uint32_t)n,
	    .config_len = (uint32_t)strlen(s->config),
	    .cpuid = (const uint8_t *)ent,
	    .config = s->config,
	};
	size_t len;
	uint8_t *p = mig_build_hello(&h, &len, err);
	if (!p)
		return -1;
	int rc = mig_send_msg(s->fd, MIG_HELLO, p, len, NULL, 0, err);
	free(p);
	if (rc < 0)
		return -1;
	return expect_ack(s, "HELLO", err);
}

/* The switch's end: the state, COMPLETE, and the destination's ACK that it has the VM. */
static int send_state(struct mig_sender *s, double t0, double stop_at, vs_err_t *err)
{
	if (mig_send_msg(s->fd, MIG_STATE, s->state, s->state_len, NULL, 0, err) < 0 ||
	    mig_send_msg(s->fd, MIG_COMPLETE, NULL, 0, NULL, 0, err) < 0)
		return -1;
	pthread_mutex_lock(&s->lock);
	s->bytes += s->state_len + 2 * MIG_HEADER_SIZE;
	s->rounds++;
	pthread_mutex_unlock(&s->lock);
	if (expect_ack(s, "COMPLETE", err) < 0)
		return -1;
	pthread_mutex_lock(&s->lock);
	s->downtime_ms = now_ms() - stop_at;
	s->total_ms = now_ms() - t0;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* --local: the destination maps the RAM's memfd, so no page moves. It gets the fd first
 * (it builds its VM on it when HELLO is accepted); then the VM stops at once and only its
 * state goes. Until the destination's last ACK nothing writes the shared RAM but this VM. */
static int migrate_local(struct mig_sender *s, double t0, vs_err_t *err)
{
	if (mig_send_ram_fd(s->fd, s->vm->mem.ram_size, s->vm->mem.fd, err) < 0)
		return -1;
	pthread_mutex_lock(&s->lock);
	s->bytes += MIG_HEADER_SIZE + MIG_RAM_FD_LEN;
	pthread_mutex_unlock(&s->lock);
	if (send_hello(s, err) < 0)
		return -1;
	double stop_at = now_ms();
	if (ask(s, REQ_STOP, err) < 0)
		return -1;
	s->stopped = true;
	return send_state(s, t0, stop_at, err);
}

static int migrate(struct mig_sender *s, vs_err_t *err)
{
	double t0 = now_ms();
	double deadline = s->o.timeout_s ? t0 + s->o.timeout_s * 1000.0 : 0;
	double cancel_at = s->o.on_timeout == MIG_TIMEOUT_CANCEL ? deadline : 0;
	int fd = mig_connect(s->url, err);
	if (fd < 0)
		return -1;
	pthread_mutex_lock(&s->lock);
	s->fd = fd;
	pthread_mutex_unlock(&s->lock);
	/* a destination that stalls is a failure, not a hang of the source's migration */
	struct timeval tv = {.tv_sec = 30};
	setsockopt(s->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (s->o.local)
		return migrate_local(s, t0, err);
	if (send_hello(s, err) < 0)
		return -1;
	uint64_t words = bitmap_words(s->vm);
	uint64_t *b = calloc(words ? words : 1, sizeof(uint64_t));
	if (!b)
		return vs_err(err, ENOMEM, "dirty page bitmap");
	int rc = -1;
	/* everything the log held before counts as sent by the full round that follows */
	if (take_dirty(s, b, err) < 0)
		goto out;
	double r0 = now_ms();
	uint64_t before = s->bytes;
	if (send_pages(s, b, true, true, cancel_at, err) < 0)
		goto out;
	double ms = now_ms() - r0;
	pthread_mutex_lock(&s->lock);
	s->rounds = 1;
	s->bandwidth = (double)(s->bytes - before) / (ms > 1 ? ms / 1e3 : 1e-3);
	pthread_mutex_unlock(&s->lock);
	for (;;) {
		memset(b, 0, words * sizeof(uint64_t));
		if (take_dirty(s, b, err) < 0)
			goto out;
		uint64_t dirty = count_bits(b, words);
		pthread_mutex_lock(&s->lock);
		s->last_dirty_pages = dirty;
		s->estimated_ms =
		    (double)dirty * MIG_PAGE * 1e3 / (s->bandwidth > 1 ? s->bandwidth : 1);
		pthread_mutex_unlock(&s->lock);
		vs_debug("migration round %u: %llu dirty pages, estimated downtime %.1f ms",
			 s->rounds, (unsigned long long)dirty, s->estimated_ms);
		if (s->estimated_ms <= s->o.downtime_ms) {
			/* these go while the VM still runs: the pause then waits only for what
			 * this last round let the guest dirty, not for this round too */
			if (send_pages(s, b, false, false, cancel_at, err) < 0)
				goto out;
			memset(b, 0, words * sizeof(uint64_t));
			break;
		}
		if (deadline > 0 && now_ms() > deadline) {
			if (s->o.on_timeout == MIG_TIMEOUT_FORCE) {
				vs_info(
				    "migration: timed out after %u rounds with %llu dirty pages: "
				    "forcing the switch (estimated downtime %.0f ms)",
				    s->rounds, (unsigned long long)dirty, s->estimated_ms);
				break;
			}
			vs_err(
			    err, 0,
			    "timed out (--timeout-s %u) after %u rounds: %llu pages still dirty, "
			    "estimated downtime %.0f ms > %u ms; cancelled",
			    s->o.timeout_s, s->rounds, (unsigned long long)dirty, s->estimated_ms,
			    s->o.downtime_ms);
			goto out;
		}
		r0 = now_ms();
		before = s->bytes;
		if (send_pages(s, b, false, false, cancel_at, err) < 0)
			goto out;
		ms = now_ms() - r0;
		pthread_mutex_lock(&s->lock);
		s->rounds++;
		if (s->bytes - before >=
		    (1u << 20)) /* small rounds measure latency, not bandwidth */
			s->bandwidth = (double)(s->bytes - before) / (ms > 1 ? ms / 1e3 : 1e-3);
		pthread_mutex_unlock(&s->lock);
	}
	/* the switch: the VM stops, the rest goes */
	double stop_at = now_ms();
	if (ask(s, REQ_STOP, err) < 0)
		goto out;
	s->stopped = true;
	/* what came since the last round (and, when the timeout forced the switch, that
	 * round's pages, not sent) */
	if (take_dirty(s, b, err) < 0 || send_pages(s, b, false, false, 0, err) < 0 ||
	    send_state(s, t0, stop_at, err) < 0)
		goto out;
	rc = 0;
out:
	free(b);
	return rc;
}

static void *worker(void *arg)
{
	struct mig_sender *s = arg;
	cleanup_err vs_err_t err = NULL;
	int rc = vmm_seccomp_apply(VMM_THREAD_MIGRATION, &err);
	if (rc == 0)
		rc = migrate(s, &err);
	if (rc < 0 && s->fd >= 0) {
		/* tell the destination why, if it still listens, so it exits saying so */
		const char *m = err ? err->msg : "failed";
		size_t ml = strlen(m) < MIG_ERROR_MAX ? strlen(m) : MIG_ERROR_MAX;
		mig_send_msg(s->fd, MIG_ERROR, m, ml, NULL, 0, NULL);
	}
	if (rc < 0 && s->stopped) {
		cleanup_err vs_err_t e2 = NULL;
		ask(s, REQ_RESUME, &e2);
	}
	pthread_mutex_lock(&s->lock);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->phase = rc == 0 ? PH_COMPLETED : PH_FAILED;
	if (rc < 0)
		snprintf(s->error, sizeof(s->error), "%s", err ? err->msg : "failed");
	pthread_mutex_unlock(&s->lock);
	uint64_t one = 1;
	(void)!write(s->notify_fd, &one, sizeof(one));
	return NULL;
}

/* A migration that failed or never started leaves the source as it found it: KVM's log
 * write-protects every page the guest writes, a cost nothing else asked for. The VMM's own
 * bitmap of device writes stays: device workers may be setting bits in it right now, and
 * a set bit costs nothing. */
static void dirty_log_off(struct vm *vm)
{
	cleanup_err vs_err_t e = NULL;
	if (vm_dirty_log(vm, false, &e) < 0)
		vs_warn("migration: %s", e->msg);
}

struct mig_sender *migration_send_start(struct vm *vm, const struct mig_send_opts *o,
					const char *config_json, const struct mig_controller *ctl,
					int notify_fd, vs_err_t *err)
{
	if (!vm->mem.host)
		return vs_err(err, 0, "the VM has no RAM"), NULL;
	struct mig_sender *s = calloc(1, sizeof(*s));
	if (!s)
		return vs_err(err, ENOMEM, "migration"), NULL;
	s->vm = vm;
	s->o = *o;
	s->url = strdup(o->url);
	s->config = strdup(config_json);
	s->o.url = s->url;
	s->ctl = *ctl;
	s->notify_fd = notify_fd;
	s->fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	if (!s->url || !s->config) {
		vs_err(err, ENOMEM, "migration");
		goto fail;
	}
	s->had_tracking = vm->dirty_log;
	if (o->local && (!vm->mem.shared || !mig_url_is_unix(o->url))) {
		vs_err(err, 0,
		       !vm->mem.shared
			   ? "local: the VM's RAM is not shared (start it with --shared-memory, "
			     "or machine-config mem_shared)"
			   : "local: the RAM's memfd goes over a Unix socket only (unix:PATH)");
		goto fail;
	}
	/* local: no page is copied, so nothing needs to know what was written */
	if (!o->local &&
	    (vm_dirty_log(vm, true, err) < 0 || guest_mem_track_dirty(&vm->mem, true, err) < 0)) {
		vs_err_wrap(err, "migration: dirty page tracking");
		goto fail;
	}
	int e = pthread_create(&s->thread, NULL, worker, s);
	if (e) {
		vs_err(err, e, "migration thread");
		goto fail;
	}
	return s;
fail:
	if (!s->had_tracking)
		dirty_log_off(vm);
	free(s->url);
	free(s->config);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
	return NULL;
}

void migration_service(struct mig_sender *s)
{
	pthread_mutex_lock(&s->lock);
	enum request r = s->req_done ? REQ_NONE : s->req;
	enum phase ph = s->phase;
	pthread_mutex_unlock(&s->lock);
	if (r == REQ_STOP || r == REQ_RESUME) {
		int rc = 0;
		cleanup_err vs_err_t err = NULL;
		uint8_t *state = NULL;
		size_t len = 0;
		if (r == REQ_STOP)
			rc = s->ctl.stop_and_save(s->ctl.ctx, &state, &len, &err);
		else
			s->ctl.resume(s->ctl.ctx);
		pthread_mutex_lock(&s->lock);
		s->req_rc = rc;
		s->state = state;
		s->state_len = len;
		if (rc < 0)
			snprintf(s->req_error, sizeof(s->req_error), "%s",
				 err ? err->msg : "pause");
		s->req_done = true;
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
	}
	if (ph != PH_ACTIVE && !s->reported) {
		s->reported = true;
		pthread_join(s->thread, NULL);
		if (ph == PH_FAILED && s->had_tracking && !s->o.local) {
			/* the rounds took pages out of the logs a Diff snapshot reads: the next
			 * Diff holds every page instead of missing some */
			for (uint64_t i = 0; i < bitmap_words(s->vm); i++)
				atomic_store(&s->vm->mem.dirty[i], ~0ULL);
		} else if (ph == PH_FAILED && !s->had_tracking) {
			dirty_log_off(s->vm);
		}
		s->ctl.finished(s->ctl.ctx, ph == PH_COMPLETED, ph == PH_FAILED ? s->error : NULL);
	}
}

json_t *migration_status(struct mig_sender *s)
{
	pthread_mutex_lock(&s->lock);
	static const char *const names[] = {"active", "completed", "failed"};
	json_t *o = json_pack(
	    "{s:s, s:s, s:i, s:I, s:I, s:I, s:f, s:f, s:f, s:f}", "state", names[s->phase],
	    "destination_url", s->url, "rounds", s->rounds, "bytes_sent", (json_int_t)s->bytes,
	    "pages_sent", (json_int_t)s->pages, "last_dirty_pages", (json_int_t)s->last_dirty_pages,
	    "bandwidth_mib_s", s->bandwidth / (1 << 20), "estimated_downtime_ms", s->estimated_ms,
	    "downtime_ms", s->downtime_ms, "total_ms", s->total_ms);
	if (o && s->phase == PH_FAILED)
		json_object_set_new(o, "error", json_string(s->error));
	pthread_mutex_unlock(&s->lock);
	return o;
}

bool migration_active(struct mig_sender *s)
{
	return s && !s->reported;
}

void migration_send_free(struct mig_sender *s)
{
	if (!s)
		return;
	if (!s->reported) {
		/* the controller goes away mid-migration: unblock the worker wherever it is */
		pthread_mutex_lock(&s->lock);
		s->abort = true;
		int fd = s->fd;
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
		if (fd >= 0)
			shutdown(fd, SHUT_RDWR);
		pthread_join(s->thread, NULL);
	}
	free(s->state);
	free(s->url);
	free(s->config);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}
