/* virtio-balloon device: the queues (worker thread), the configuration space (vCPU
 * threads) and what the controller asks of a running balloon (main thread). The guest's
 * bytes are parsed by balloon_spec.c; here they become madvise calls. */
#include "vmm/virtio/balloon.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "base/json.h"
#include "base/log.h"
#include "vmm/config.h"
#include "vmm/layout.h"
#include "vmm/virtio/balloon_spec.h"
#include "vmm/virtio/virtio.h"
#include "vmm/vm.h"

#define BALLOON_QUEUE_MAX 256
#define BALLOON_SNAP_VERSION 1
#define PFN_CHUNK 1024 /* bytes of a PFN array read at a time: 256 PFNs, Linux's array */
#define STATS_MAX (BALLOON_S_NR * 4 * BALLOON_STAT_SIZE) /* room for a newer guest's tags */

struct balloon {
	struct virtio_mmio *t;
	struct guest_mem *mem;
	struct balloon_config cfg;
	uint64_t features; /* the driver's, at activation */
	atomic_uint num_pages, actual;
	struct virtq_chain chain;

	pthread_mutex_t lock; /* the statistics and their timer, main thread vs worker */
	uint32_t stats_s;
	struct balloon_stats stats;
	bool stats_held; /* the driver's stats buffer, kept until the next refresh is due */
	uint16_t stats_head;
	struct timespec stats_due;
	bool released_logged;
};

static uint32_t mib_to_pages(uint32_t mib)
{
	return mib << (20 - BALLOON_PAGE_SHIFT);
}

/* ---- the guest's pages back to the host ---- */

/* [gpa, gpa + len) was checked to be RAM. The page contents are gone from here on: for
 * anonymous RAM the guest reads zeros, for a snapshot's file its original bytes. */
static int release(struct balloon *b, uint64_t gpa, uint64_t len)
{
	void *p = guest_mem_ptr(b->mem, gpa, len);
	if (!p || guest_mem_discard(b->mem, p, len) < 0) {
		if (!b->released_logged)
			vs_warn("balloon: discarding %llu KiB of guest RAM at %#llx: %s",
				(unsigned long long)(len >> 10), (unsigned long long)gpa,
				p ? strerror(errno) : "not RAM");
		b->released_logged = true;
		return -1;
	}
	/* a diff snapshot must carry the zeros the guest will see */
	guest_mem_mark_dirty(b->mem, gpa, len);
	return 0;
}

/* One inflate or deflate request: a PFN array in the chain's readable part. */
static int take_pfns(struct balloon *b, bool inflate, vs_err_t *err)
{
	const struct virtq_chain *c = &b->chain;
	if (c->n_in)
		return vs_err(err, 0, "%s request with a device-writable buffer",
			      inflate ? "inflate" : "deflate");
	uint8_t buf[PFN_CHUNK];
	struct balloon_range r[PFN_CHUNK / 4];
	for (uint64_t off = 0; off < c->out_len;) {
		uint64_t want = c->out_len - off < sizeof(buf) ? c->out_len - off : sizeof(buf);
		uint64_t got = virtq_chain_read(c, off, buf, want);
		size_t n, used;
		if (balloon_pfns_parse(buf, (size_t)got, b->mem->ram_size, r,
				       sizeof(r) / sizeof(r[0]), &n, &used, err) < 0)
			return vs_err_wrap(err, "%s request", inflate ? "inflate" : "deflate");
		/* a deflated page needs nothing: the guest will just use it again */
		for (size_t i = 0; inflate && i < n; i++)
			release(b, r[i].gpa, r[i].len);
		off += used;
	}
	return 0;
}

/* Free page reporting: the chain's buffers are the free pages themselves. */
static int take_report(struct balloon *b, vs_err_t *err)
{
	const struct virtq_chain *c = &b->chain;
	for (unsigned i = 0; i < c->n_out + c->n_in; i++) {
		const struct virtq_seg *s = i < c->n_out ? &c->out[i] : &c->in[i - c->n_out];
		uint64_t off = (uint64_t)((uint8_t *)s->host - b->mem->host);
		uint64_t gpa = off < b->mem->low_size ? off : off - b->mem->low_size + LAYOUT_4G;
		if (!balloon_range_is_ram(gpa, s->len, b->mem->ram_size))
			return vs_err(err, 0,
				      "reported range %#llx+%#x is not whole pages of guest RAM",
				      (unsigned long long)gpa, s->len);
		release(b, gpa, s->len);
	}
	return 0;
}

/* ---- statistics ---- */

static bool due(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/* lock held: the next refresh in stats_s seconds */
static void schedule(struct balloon *b)
{
	clock_gettime(CLOCK_MONOTONIC, &b->stats_due);
	b->stats_due.tv_sec += b->stats_s;
	virtio_mmio_wake_after(b->t, b->stats_s * 1000);
}

/* lock held: the kept buffer goes back to the driver, which refills and returns it */
static void give_back_stats(struct balloon *b, unsigned qi)
{
	struct virtq *q = virtio_mmio_queue(b->t, qi);
	virtq_push(q, b->stats_head, 0);
	b->stats_held = false;
	virtio_mmio_notify_used(b->t, qi);
}

static int take_stats(struct balloon *b, unsigned qi, vs_err_t *err)
{
	const struct virtq_chain *c = &b->chain;
	uint8_t buf[STATS_MAX];
	if (c->n_in)
		return vs_err(err, 0, "statistics buffer is device-writable");
	if (c->out_len > sizeof(buf))
		return vs_err(err, 0, "statistics buffer of %llu bytes (at most %zu)",
			      (unsigned long long)c->out_len, sizeof(buf));
	uint64_t got = virtq_chain_read(c, 0, buf, c->out_len);
	struct balloon_stats s = {0};
	if (balloon_stats_parse(buf, (size_t)got, &s, err) < 0)
		return -1;
	pthread_mutex_lock(&b->lock);
	if (b->stats_held) /* a second buffer: the first one goes back unread */
		give_back_stats(b, qi);
	/* what this update did not carry keeps its last value */
	for (unsigned i = 0; i < BALLOON_S_NR; i++)
		if (s.have & (1u << i))
			b->stats.val[i] = s.val[i];
	b->stats.have |= s.have;
	b->stats_held = true;
	b->stats_head = c->head;
	schedule(b);
	pthread_mutex_unlock(&b->lock);
	return 0;
}

/* ---- the transport's callbacks ---- */

static void balloon_queue_notify(void *opaque, unsigned qi)
{
	struct balloon *b = opaque;
	enum balloon_queue role = balloon_queue_role(qi, b->features);
	struct virtq *q = virtio_mmio_queue(b->t, qi);
	if (role == BQ_NONE)
		return;
	if (role == BQ_STATS) {
		pthread_mutex_lock(&b->lock);
		if (b->stats_held && due(&b->stats_due))
			give_back_stats(b, qi);
		pthread_mutex_unlock(&b->lock);
	}
	bool pushed = false;
	for (;;) {
		vs_err_t err = NULL;
		int got = virtq_pop(q, &b->chain, &err);
		if (got > 0) {
			int r = role == BQ_STATS       ? take_stats(b, qi, &err)
				: role == BQ_REPORTING ? take_report(b, &err)
						       : take_pfns(b, role == BQ_INFLATE, &err);
			if (r == 0 && role == BQ_STATS)
				continue; /* kept, not pushed */
			if (r == 0) {
				virtq_push(q, b->chain.head, 0);
				pushed = true;
				continue;
			}
		}
		if (got < 0 || err) {
			virtio_mmio_fail(b->t, err->msg);
			vs_err_free(&err);
		}
		break;
	}
	if (pushed)
		virtio_mmio_notify_used(b->t, qi);
}

static void balloon_config_read(void *opaque, uint32_t off, uint8_t *data, uint32_t len)
{
	struct balloon *b = opaque;
	uint8_t cfg[BALLOON_CONFIG_SIZE] = {0};
	uint32_t v[2] = {atomic_load(&b->num_pages), atomic_load(&b->actual)};
	for (int i = 0; i < 2; i++)
		for (int k = 0; k < 4; k++)
			cfg[i * 4 + k] = (uint8_t)(v[i] >> (8 * k));
	memset(data, 0, len);
	if (off < sizeof(cfg))
		memcpy(data, cfg + off, len < sizeof(cfg) - off ? len : sizeof(cfg) - off);
}

static void balloon_config_write(void *opaque, uint32_t off, const uint8_t *data, uint32_t len)
{
	struct balloon *b = opaque;
	/* only `actual` is the driver's to write */
	if (off != BALLOON_CONFIG_ACTUAL || len != 4)
		return;
	uint32_t v = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
		     (uint32_t)data[3] << 24;
	atomic_store(&b->actual, v);
}

static int balloon_activate(void *opaque, uint64_t features)
{
	struct balloon *b = opaque;
	b->features = features;
	return 0;
}

static void balloon_reset(void *opaque)
{
	struct balloon *b = opaque;
	pthread_mutex_lock(&b->lock);
	b->stats_held = false;
	pthread_mutex_unlock(&b->lock);
	atomic_store(&b->actual, 0);
	b->features = 0;
}

/* A pause: the kept statistics buffer is the one request in flight; it goes back now, so a
 * snapshot holds no request the restored device would not know about. */
static void balloon_quiesce(void *opaque)
{
	struct balloon *b = opaque;
	pthread_mutex_lock(&b->lock);
	for (unsigned qi = 0; b->stats_held && qi < balloon_num_queues(b->features); qi++)
		if (balloon_queue_role(qi, b->features) == BQ_STATS)
			give_back_stats(b, qi);
	pthread_mutex_unlock(&b->lock);
}

struct balloon_snap {
	uint32_t version, num_pages, actual, stats_s;
};

static int balloon_save(void *opaque, void **blob, size_t *len, vs_err_t *err)
{
	struct balloon *b = opaque;
	struct balloon_snap *s = malloc(sizeof(*s));
	if (!s)
		return vs_err(err, ENOMEM, "balloon");
	pthread_mutex_lock(&b->lock);
	*s = (struct balloon_snap){BALLOON_SNAP_VERSION, atomic_load(&b->num_pages),
				   atomic_load(&b->actual), b->stats_s};
	pthread_mutex_unlock(&b->lock);
	*blob = s;
	*len = sizeof(*s);
	return 0;
}

static int balloon_restore(void *opaque, const void *blob, size_t len, vs_err_t *err)
{
	struct balloon *b = opaque;
	struct balloon_snap s;
	if (len != sizeof(s))
		return vs_err(err, 0, "balloon: state of %zu bytes (expected %zu)", len, sizeof(s));
	memcpy(&s, blob, sizeof(s));
	uint32_t ram_pages = (uint32_t)(b->mem->ram_size >> BALLOON_PAGE_SHIFT);
	if (s.version != BALLOON_SNAP_VERSION)
		return vs_err(err, 0, "balloon: format version %u (this vessel reads %u)",
			      s.version, BALLOON_SNAP_VERSION);
	if (s.num_pages > ram_pages || s.actual > ram_pages)
		return vs_err(err, 0,
			      "balloon: num_pages %u / actual %u: above the guest's %u pages",
			      s.num_pages, s.actual, ram_pages);
	if ((s.stats_s == 0) != (b->stats_s == 0))
		return vs_err(err, 0,
			      "balloon: stats_polling_interval_s %u: statistics %s in the "
			      "description but %s in the state",
			      s.stats_s, b->stats_s ? "on" : "off", s.stats_s ? "on" : "off");
	atomic_store(&b->num_pages, s.num_pages);
	atomic_store(&b->actual, s.actual);
	b->stats_s = s.stats_s;
	return 0;
}

static void balloon_destroy(void *opaque)
{
	struct balloon *b = opaque;
	if (!b)
		return;
	pthread_mutex_destroy(&b->lock);
	free(b);
}

/* The features are the config's, so there is one ops table per combination. */
static struct virtio_device_ops ops_variants[8];
static pthread_once_t ops_once = PTHREAD_ONCE_INIT;

static void ops_init(void)
{
	for (unsigned v = 0; v < 8; v++) {
		uint64_t f = 0;
		if (v & 1)
			f |= 1ULL << VIRTIO_BALLOON_F_STATS_VQ;
		if (v & 2)
			f |= 1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM;
		if (v & 4)
			f |= 1ULL << VIRTIO_BALLOON_F_REPORTING;
		ops_variants[v] = (struct virtio_device_ops){
		    .name = "balloon",
		    .device_id = VIRTIO_ID_BALLOON,
		    .features = f,
		    .num_queues = (uint16_t)balloon_num_queues(f),
		    .queue_max = BALLOON_QUEUE_MAX,
		    .config_read = balloon_config_read,
		    .config_write = balloon_config_write,
		    .activate = balloon_activate,
		    .queue_notify = balloon_queue_notify,
		    .reset = balloon_reset,
		    .quiesce = balloon_quiesce,
		    .save = balloon_save,
		    .restore = balloon_restore,
		    .destroy = balloon_destroy,
		};
	}
}

static void *balloon_create(struct vm *vm, const void *config, vs_err_t *err)
{
	const struct balloon_config *cfg = config;
	uint64_t mib = vm->mem.ram_size >> 20;
	if (device_find(vm, &virtio_balloon_kind)) {
		vs_err(err, 0, "a VM has one balloon (--balloon given twice)");
		return NULL;
	}
	if (cfg->amount_mib > mib) {
		vs_err(err, 0, "amount_mib %u: more than the guest's %llu MiB of RAM",
		       cfg->amount_mib, (unsigned long long)mib);
		return NULL;
	}
	if (vm->mem.huge) {
		vs_err(err, 0,
		       "a balloon on huge pages cannot give back 4 KiB pages (drop "
		       "--hugepages / huge_pages or the balloon)");
		return NULL;
	}
	struct balloon *b = calloc(1, sizeof(*b));
	if (!b) {
		vs_err(err, ENOMEM, "balloon");
		return NULL;
	}
	pthread_mutex_init(&b->lock, NULL);
	b->mem = &vm->mem;
	b->cfg = *cfg;
	b->stats_s = cfg->stats_s;
	atomic_store(&b->num_pages, mib_to_pages(cfg->amount_mib));
	pthread_once(&ops_once, ops_init);
	unsigned v =
	    (cfg->stats_s ? 1 : 0) | (cfg->deflate_on_oom ? 2 : 0) | (cfg->reporting ? 4 : 0);
	if (virtio_mmio_add(vm, &ops_variants[v], b, &b->t, err) < 0) {
		balloon_destroy(b);
		return NULL;
	}
	return b->t;
}

/* ---- the controller's side ---- */

static struct balloon *of(void *state)
{
	return virtio_mmio_device(state);
}

int balloon_set_target(void *state, uint32_t amount_mib, vs_err_t *err)
{
	struct balloon *b = of(state);
	uint64_t mib = b->mem->ram_size >> 20;
	if (amount_mib > mib)
		return vs_err(err, 0, "amount_mib %u: more than the guest's %llu MiB of RAM",
			      amount_mib, (unsigned long long)mib);
	atomic_store(&b->num_pages, mib_to_pages(amount_mib));
	virtio_mmio_notify_config(b->t);
	return 0;
}

int balloon_set_stats_interval(void *state, uint32_t seconds, vs_err_t *err)
{
	struct balloon *b = of(state);
	pthread_mutex_lock(&b->lock);
	int r = 0;
	if (!b->stats_s || !seconds) {
		r = vs_err(err, 0,
			   "stats_polling_interval_s: statistics cannot be turned %s after boot "
			   "(the device was configured with%s them)",
			   seconds ? "on" : "off", b->stats_s ? "" : "out");
	} else {
		b->stats_s = seconds;
		clock_gettime(CLOCK_MONOTONIC, &b->stats_due);
		virtio_mmio_wake_after(b->t, 0);
	}
	pthread_mutex_unlock(&b->lock);
	return r;
}

json_t *balloon_stats_json(void *state, vs_err_t *err)
{
	struct balloon *b = of(state);
	if (!b->cfg.stats_s) {
		vs_err(err, 0,
		       "balloon statistics are not enabled (stats_polling_interval_s was 0 "
		       "when the device was configured)");
		return NULL;
	}
	uint32_t target = atomic_load(&b->num_pages), actual = atomic_load(&b->actual);
	json_t *o = json_pack("{s:I, s:I, s:I, s:I}", "target_pages", (json_int_t)target,
			      "actual_pages", (json_int_t)actual, "target_mib",
			      (json_int_t)(target >> (20 - BALLOON_PAGE_SHIFT)), "actual_mib",
			      (json_int_t)(actual >> (20 - BALLOON_PAGE_SHIFT)));
	if (!o) {
		vs_err(err, ENOMEM, "balloon statistics");
		return NULL;
	}
	pthread_mutex_lock(&b->lock);
	for (unsigned i = 0; i < BALLOON_S_NR; i++)
		if (b->stats.have & (1u << i))
			json_object_set_new(o, balloon_stat_names[i],
					    json_integer((json_int_t)b->stats.val[i]));
	pthread_mutex_unlock(&b->lock);
	return o;
}

/* ---- the config ---- */

static int parse_u32(const char *key, const char *v, size_t len, uint32_t max, uint32_t *out,
		     vs_err_t *err)
{
	uint64_t x = 0;
	if (len == 0 || len > 10)
		return vs_err(err, 0, "%s=%.*s: must be a number", key, (int)len, v);
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)v[i]))
			return vs_err(err, 0, "%s=%.*s: must be a number", key, (int)len, v);
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	if (x > max)
		return vs_err(err, 0, "%s=%.*s: at most %u", key, (int)len, v, max);
	*out = (uint32_t)x;
	return 0;
}

#define AMOUNT_MAX (UINT32_MAX >> (20 - BALLOON_PAGE_SHIFT)) /* num_pages is 32 bits */

int balloon_config_parse(const char *spec, struct balloon_config *out, vs_err_t *err)
{
	*out = (struct balloon_config){0};
	bool has_amount = false;
	struct vm_spec_opt o;
	const char *pos = spec;
	int more;
	while ((more = vm_spec_next(spec, &pos, &o, err)) > 0) {
		const char *val = o.val;
		size_t vlen = o.vlen;
		bool eq = val != NULL;
		if (vm_spec_key(&o, "amount") && eq) {
			if (parse_u32("amount", val, vlen, AMOUNT_MAX, &out->amount_mib, err) < 0)
				return -1;
			has_amount = true;
		} else if (vm_spec_key(&o, "stats") && eq) {
			if (parse_u32("stats", val, vlen, 86400, &out->stats_s, err) < 0)
				return -1;
		} else if (vm_spec_key(&o, "deflate_on_oom") && !eq) {
			out->deflate_on_oom = true;
		} else if (vm_spec_key(&o, "free_page_reporting") && !eq) {
			out->reporting = true;
		} else {
			return vs_err(err, 0,
				      "`%.*s`: unknown option (amount=MiB, deflate_on_oom, "
				      "stats=SECONDS, free_page_reporting)",
				      (int)o.len, o.text);
		}
	}
	if (more < 0)
		return -1;
	if (!has_amount)
		return vs_err(err, 0, "amount=MiB is required (0 for an empty balloon)");
	return 0;
}

int balloon_config_from_json(json_t *obj, struct balloon_config *out, vs_err_t *err)
{
	static const char *const keys[] = {
	    "amount_mib",	   "deflate_on_oom",	"stats_polling_interval_s",
	    "free_page_reporting", "free_page_hinting", NULL};
	*out = (struct balloon_config){0};
	int64_t amount = 0, stats = 0;
	bool hinting = false;
	if (vm_json_only(obj, keys, err) < 0 ||
	    vjson_require(vjson_int_range(obj, NULL, "amount_mib", 0, AMOUNT_MAX, &amount, err),
			  NULL, "amount_mib", "an integer", err) < 0 ||
	    vjson_require(vjson_bool(obj, NULL, "deflate_on_oom", &out->deflate_on_oom, err), NULL,
			  "deflate_on_oom", "a boolean", err) < 0 ||
	    vjson_int_range(obj, NULL, "stats_polling_interval_s", 0, 86400, &stats, err) < 0 ||
	    vjson_bool(obj, NULL, "free_page_reporting", &out->reporting, err) < 0 ||
	    vjson_bool(obj, NULL, "free_page_hinting", &hinting, err) < 0)
		return -1;
	if (hinting)
		return vs_err(err, 0, "free_page_hinting: not supported (free_page_reporting is)");
	out->amount_mib = (uint32_t)amount;
	out->stats_s = (uint32_t)stats;
	return 0;
}

static int balloon_from_cli(const char *spec, void *config, vs_err_t *err)
{
	return balloon_config_parse(spec, config, err);
}

static int balloon_from_json(json_t *obj, void *config, vs_err_t *err)
{
	return balloon_config_from_json(obj, config, err);
}

const struct device_kind virtio_balloon_kind = {
    .name = "balloon",
    .cli_flag = "--balloon",
    .cli_value = true,
    .api_path = "/balloon",
    .json_key = "balloon",
    .virtio = true,
    .config_size = sizeof(struct balloon_config),
    .from_cli = balloon_from_cli,
    .from_json = balloon_from_json,
    .create = balloon_create,
    .destroy = virtio_mmio_destroy,
    .save = virtio_mmio_save,
    .restore = virtio_mmio_restore,
};
