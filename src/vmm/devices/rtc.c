#include "vmm/seccomp.h"
#include "vmm/devices/rtc.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "vmm/bus.h"

enum {
	RTC_SECONDS = 0x00,
	RTC_SECONDS_ALARM = 0x01,
	RTC_MINUTES = 0x02,
	RTC_MINUTES_ALARM = 0x03,
	RTC_HOURS = 0x04,
	RTC_HOURS_ALARM = 0x05,
	RTC_WEEKDAY = 0x06,
	RTC_DAY = 0x07,
	RTC_MONTH = 0x08,
	RTC_YEAR = 0x09,
	RTC_REG_A = 0x0a,
	RTC_REG_B = 0x0b,
	RTC_REG_C = 0x0c,
	RTC_REG_D = 0x0d,
	RTC_CENTURY = RTC_CENTURY_REG,
};

#define REG_A_UIP 0x80
#define REG_B_SET 0x80
#define REG_B_PIE 0x40
#define REG_B_AIE 0x20
#define REG_B_UIE 0x10
#define REG_B_BINARY 0x04
#define REG_B_24H 0x02
#define REG_C_IRQF 0x80
#define REG_C_PF 0x40
#define REG_C_AF 0x20
#define REG_C_UF 0x10
#define REG_D_VRT 0x80
#define ALARM_DONT_CARE 0xc0
#define HOUR_PM 0x80

#define NS 1000000000LL
#define DAY 86400

struct rtc {
	pthread_mutex_t lock;
	struct irq_line irq;
	struct rtc_clock clock;
	bool host_clock;
	uint8_t index;
	/* CMOS RAM; while SET is on, the time registers' slots hold what the guest writes */
	uint8_t cmos[128];
	int64_t offset;	  /* RTC seconds minus host seconds (the guest may set the clock) */
	int64_t last_s;	  /* RTC second whose update has been flagged */
	int64_t latch_s;  /* the second the time registers show... */
	int64_t latch_ns; /* ...latched at this host time (-1: none) */
	int level;	  /* the IRQ line as last driven */

	int tfd, stop_fd;
	pthread_t thread;
	bool started;
};

static int64_t host_now_ns(void *ctx)
{
	(void)ctx;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b < 0);
}

static int64_t rtc_seconds(const struct rtc *r, int64_t ns)
{
	return floor_div(ns, NS) + r->offset;
}

struct rtc *rtc_new(struct irq_line irq, const struct rtc_clock *clock)
{
	struct rtc *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	pthread_mutex_init(&r->lock, NULL);
	r->irq = irq;
	r->host_clock = !clock;
	r->clock = clock ? *clock : (struct rtc_clock){host_now_ns, NULL};
	r->tfd = r->stop_fd = -1;
	r->cmos[RTC_REG_A] = 0x26; /* 32.768 kHz divider, 1024 Hz rate */
	r->cmos[RTC_REG_B] = REG_B_24H;
	r->last_s = rtc_seconds(r, r->clock.now_ns(r->clock.ctx));
	r->latch_ns = -1;
	return r;
}

static bool binary(const struct rtc *r)
{
	return r->cmos[RTC_REG_B] & REG_B_BINARY;
}

static uint8_t encode(const struct rtc *r, int v)
{
	if (binary(r))
		return (uint8_t)v;
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

/* -1 for a BCD byte with a digit above 9: the guest's bytes are not trusted */
static int decode(const struct rtc *r, uint8_t v)
{
	if (binary(r))
		return v;
	if ((v & 0x0f) > 9 || (v >> 4) > 9)
		return -1;
	return (v >> 4) * 10 + (v & 0x0f);
}

static uint8_t encode_hours(const struct rtc *r, int h)
{
	if (r->cmos[RTC_REG_B] & REG_B_24H)
		return encode(r, h);
	/* 12-hour mode: 12, 1..11 with bit 7 for PM */
	int h12 = h % 12 ? h % 12 : 12;
	return (uint8_t)(encode(r, h12) | (h >= 12 ? HOUR_PM : 0));
}

static int decode_hours(const struct rtc *r, uint8_t v)
{
	if (r->cmos[RTC_REG_B] & REG_B_24H)
		return decode(r, v);
	int h = decode(r, v & 0x7f);
	if (h < 1 || h > 12)
		return -1;
	return h % 12 + (v & HOUR_PM ? 12 : 0);
}

static uint8_t time_field(const struct rtc *r, uint8_t reg, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	switch (reg) {
	case RTC_SECONDS:
		return encode(r, tm.tm_sec > 59 ? 59 : tm.tm_sec);
	case RTC_MINUTES:
		return encode(r, tm.tm_min);
	case RTC_HOURS:
		return encode_hours(r, tm.tm_hour);
	case RTC_WEEKDAY:
		return encode(r, tm.tm_wday + 1);
	case RTC_DAY:
		return encode(r, tm.tm_mday);
	case RTC_MONTH:
		return encode(r, tm.tm_mon + 1);
	case RTC_YEAR:
		return encode(r, (tm.tm_year + 1900) % 100);
	default: /* RTC_CENTURY */
		return encode(r, (tm.tm_year + 1900) / 100);
	}
}

static bool is_time_reg(uint8_t reg)
{
	switch (reg) {
	case RTC_SECONDS:
	case RTC_MINUTES:
	case RTC_HOURS:
	case RTC_WEEKDAY:
	case RTC_DAY:
	case RTC_MONTH:
	case RTC_YEAR:
	case RTC_CENTURY:
		return true;
	default:
		return false;
	}
}

static void drive_irq(struct rtc *r)
{
	uint8_t *c = &r->cmos[RTC_REG_C];
	if (*c & r->cmos[RTC_REG_B] & (REG_C_PF | REG_C_AF | REG_C_UF))
		*c |= REG_C_IRQF;
	int level = (*c & REG_C_IRQF) != 0;
	if (level != r->level) {
		r->level = level;
		irq_line_set(&r->irq, level);
	}
}

static bool alarm_field_matches(uint8_t alarm, uint8_t now)
{
	return (alarm & ALARM_DONT_CARE) == ALARM_DONT_CARE || alarm == now;
}

static bool alarm_matches(const struct rtc *r, int h, int m, int s)
{
	return alarm_field_matches(r->cmos[RTC_SECONDS_ALARM], encode(r, s)) &&
	       alarm_field_matches(r->cmos[RTC_MINUTES_ALARM], encode(r, m)) &&
	       alarm_field_matches(r->cmos[RTC_HOURS_ALARM], encode_hours(r, h));
}

/* Flags every update cycle that ended since the last call, as the chip would have: UF
 * once a second, AF when the alarm registers matched the new time. */
static void update_flags(struct rtc *r, int64_t ns)
{
	int64_t now = rtc_seconds(r, ns);
	if (r->cmos[RTC_REG_B] & REG_B_SET || now <= r->last_s) {
		if (r->cmos[RTC_REG_B] & REG_B_SET)
			r->last_s = now; /* no updates while the guest sets the clock */
		return;
	}
	uint8_t flags = REG_C_UF;
	int64_t from = r->last_s + 1, n = now - r->last_s;
	/* the alarm compares hours, minutes and seconds only: a day covers every value */
	if (n > DAY)
		from = now - DAY + 1, n = DAY;
	int64_t sod = from - floor_div(from, DAY) * DAY;
	int h = (int)(sod / 3600), m = (int)(sod / 60 % 60), s = (int)(sod % 60);
	for (int64_t i = 0; i < n && !(flags & REG_C_AF); i++) {
		if (alarm_matches(r, h, m, s))
			flags |= REG_C_AF;
		if (++s == 60) {
			s = 0;
			if (++m == 60) {
				m = 0;
				h = (h + 1) % 24;
			}
		}
	}
	r->last_s = now;
	r->cmos[RTC_REG_C] |= flags;
	drive_irq(r);
}

/* Update and alarm interrupts need the clock to tick once a second; nothing else does. */
static void arm_timer(struct rtc *r, int64_t ns)
{
	if (r->tfd < 0)
		return;
	struct itimerspec its = {0};
	uint8_t b = r->cmos[RTC_REG_B];
	if (b & (REG_B_AIE | REG_B_UIE) && !(b & REG_B_SET)) {
		/* the offset is whole seconds: host second boundaries are the RTC's */
		its.it_value.tv_sec = (time_t)(floor_div(ns, NS) + 1);
		its.it_interval.tv_sec = 1;
	}
	timerfd_settime(r->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void begin_set(struct rtc *r, int64_t ns)
{
	int64_t t = rtc_seconds(r, ns);
	static const uint8_t regs[] = {RTC_SECONDS, RTC_MINUTES, RTC_HOURS, RTC_WEEKDAY,
				       RTC_DAY,	    RTC_MONTH,	 RTC_YEAR,  RTC_CENTURY};
	for (size_t i = 0; i < sizeof(regs); i++)
		r->cmos[regs[i]] = time_field(r, regs[i], t);
}

/* The time the guest wrote becomes the RTC's; a date that is not one is ignored. */
static void commit_set(struct rtc *r, int64_t ns)
{
	int sec = decode(r, r->cmos[RTC_SECONDS]), min = decode(r, r->cmos[RTC_MINUTES]);
	int hour = decode_hours(r, r->cmos[RTC_HOURS]), day = decode(r, r->cmos[RTC_DAY]);
	int mon = decode(r, r->cmos[RTC_MONTH]), yy = decode(r, r->cmos[RTC_YEAR]);
	int cent = decode(r, r->cmos[RTC_CENTURY]);
	if (sec < 0 || sec > 59 || min < 0 || min > 59 || hour < 0 || hour > 23 || day < 1 ||
	    day > 31 || mon < 1 || mon > 12 || yy < 0 || yy > 99 || cent < 19 || cent > 99)
		return;
	struct tm tm = {.tm_sec = sec,
			.tm_min = min,
			.tm_hour = hour,
			.tm_mday = day,
			.tm_mon = mon - 1,
			.tm_year = cent * 100 + yy - 1900};
	time_t t = timegm(&tm);
	if (tm.tm_mday != day) /* 31 February: timegm moved it into March */
		return;
	r->offset = (int64_t)t - floor_div(ns, NS);
	r->last_s = rtc_seconds(r, ns);
	r->latch_ns = -1;
}

static uint8_t read_reg(struct rtc *r, uint8_t reg, int64_t ns)
{
	if (is_time_reg(reg)) {
		if (r->cmos[RTC_REG_B] & REG_B_SET)
			return r->cmos[reg];
		/* A read of the seconds latches the time the others show, so a guest that
		 * reads seconds first (Linux, firmware) never sees a torn date even when
		 * its reads straddle a second; the latch expires after a second for
		 * readers that do not. */
		if (reg == RTC_SECONDS || r->latch_ns < 0 || ns - r->latch_ns >= NS) {
			r->latch_s = rtc_seconds(r, ns);
			r->latch_ns = ns;
		}
		return time_field(r, reg, r->latch_s);
	}
	switch (reg) {
	case RTC_REG_C: {
		uint8_t v = r->cmos[RTC_REG_C];
		r->cmos[RTC_REG_C] = 0;
		drive_irq(r);
		return v;
	}
	case RTC_REG_D:
		return REG_D_VRT;
	default:
		return r->cmos[reg];
	}
}

static void write_reg(struct rtc *r, uint8_t reg, uint8_t v, int64_t ns)
{
	uint8_t old_b = r->cmos[RTC_REG_B];
	switch (reg) {
	case RTC_REG_A:
		r->cmos[RTC_REG_A] = v & (uint8_t)~REG_A_UIP; /* UIP is read-only */
		return;
	case RTC_REG_B:
		if (v & REG_B_SET)
			v &= (uint8_t)~REG_B_UIE; /* as the chip does */
		if (v & REG_B_SET && !(old_b & REG_B_SET))
			begin_set(r, ns);
		r->cmos[RTC_REG_B] = v;
		if (old_b & REG_B_SET && !(v & REG_B_SET))
			commit_set(r, ns);
		drive_irq(r);
		arm_timer(r, ns);
		return;
	case RTC_REG_C:
	case RTC_REG_D:
		return;
	default:
		break;
	}
	if (is_time_reg(reg) && !(old_b & REG_B_SET)) {
		/* a field written outside a SET cycle takes effect at once */
		begin_set(r, ns);
		r->cmos[reg] = v;
		commit_set(r, ns);
		return;
	}
	r->cmos[reg] = v;
}

static void rtc_byte(void *opaque, uint64_t offset, uint8_t *v, bool is_write)
{
	struct rtc *r = opaque;
	if (offset == 0) {
		/* bit 7 of the index port is the NMI mask, not part of the index */
		if (is_write)
			r->index = *v & 0x7f;
		else
			*v = 0xff;
		return;
	}
	int64_t ns = r->clock.now_ns(r->clock.ctx);
	update_flags(r, ns);
	if (is_write)
		write_reg(r, r->index, *v, ns);
	else
		*v = read_reg(r, r->index, ns);
}

void rtc_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct rtc *r = opaque;
	pthread_mutex_lock(&r->lock);
	bus_each_byte(rtc_byte, r, offset, data, len, is_write);
	pthread_mutex_unlock(&r->lock);
}

void rtc_tick(struct rtc *r)
{
	pthread_mutex_lock(&r->lock);
	update_flags(r, r->clock.now_ns(r->clock.ctx));
	pthread_mutex_unlock(&r->lock);
}

static void *timer_thread(void *opaque)
{
	struct rtc *r = opaque;
	vmm_seccomp_apply_or_die(VMM_THREAD_WORKER);
	struct pollfd p[2] = {{.fd = r->tfd, .events = POLLIN},
			      {.fd = r->stop_fd, .events = POLLIN}};
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		uint64_t expirations;
		if (p[0].revents && read(r->tfd, &expirations, sizeof(expirations)) < 0 &&
		    errno != EAGAIN && errno != ECANCELED)
			break;
		rtc_tick(r);
	}
	return NULL;
}

int rtc_start(struct rtc *r, vs_err_t *err)
{
	if (!r->host_clock)
		return 0;
	/* TFD_TIMER_CANCEL_ON_SET is not asked for: a host clock step simply shows */
	r->tfd = timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC | TFD_NONBLOCK);
	if (r->tfd < 0)
		return vs_err(err, errno, "RTC: timerfd_create");
	r->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (r->stop_fd < 0)
		return vs_err(err, errno, "RTC: eventfd");
	/* signals belong to the main thread's signalfd and the vCPUs' kicks */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int e = pthread_create(&r->thread, NULL, timer_thread, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e)
		return vs_err(err, e, "RTC: timer thread");
	r->started = true;
	pthread_mutex_lock(&r->lock);
	arm_timer(r, r->clock.now_ns(r->clock.ctx));
	pthread_mutex_unlock(&r->lock);
	return 0;
}

void rtc_free(struct rtc *r)
{
	if (!r)
		return;
	if (r->started) {
		/* an eventfd write of 1 cannot fail short of a bad fd */
		uint64_t one = 1;
		if (write(r->stop_fd, &one, sizeof(one)) != sizeof(one))
			abort();
		pthread_join(r->thread, NULL);
	}
	if (r->tfd >= 0)
		close(r->tfd);
	if (r->stop_fd >= 0)
		close(r->stop_fd);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* A snapshot: the index, the CMOS RAM (registers, alarm, what a SET cycle holds) and the
 * offset the guest set, relative to the host's clock. The RTC is the wall clock: after a
 * load it shows the host's time plus that offset, as a real machine's battery clock kept
 * running while it was off, instead of the time the snapshot was taken. */
#define RTC_SNAP_VERSION 1
#define RTC_SNAP_SIZE (4 + 1 + 128 + 8)

int rtc_save(void *state, void **blob, size_t *len, vs_err_t *err)
{
	struct rtc *r = state;
	uint8_t *b = malloc(RTC_SNAP_SIZE);
	if (!b)
		return vs_err(err, ENOMEM, "rtc");
	uint32_t version = RTC_SNAP_VERSION;
	memcpy(b, &version, 4);
	pthread_mutex_lock(&r->lock);
	b[4] = r->index;
	memcpy(b + 5, r->cmos, sizeof(r->cmos));
	memcpy(b + 5 + sizeof(r->cmos), &r->offset, 8);
	pthread_mutex_unlock(&r->lock);
	*blob = b;
	*len = RTC_SNAP_SIZE;
	return 0;
}

/* Offsets beyond this are no date the RTC can show (years 1900-9999 fit well inside). */
#define RTC_OFFSET_MAX (400LL * 366 * DAY * 25)

int rtc_restore(void *state, const void *blob, size_t len, vs_err_t *err)
{
	struct rtc *r = state;
	const uint8_t *b = blob;
	uint32_t version;
	if (len < 4)
		return vs_err(err, 0, "rtc: state of %zu bytes, truncated", len);
	memcpy(&version, b, 4);
	if (version != RTC_SNAP_VERSION)
		return vs_err(err, 0, "rtc: format version %u (this vessel reads %u)", version,
			      RTC_SNAP_VERSION);
	if (len != RTC_SNAP_SIZE)
		return vs_err(err, 0, "rtc: state of %zu bytes, %u expected", len, RTC_SNAP_SIZE);
	int64_t offset;
	memcpy(&offset, b + 5 + 128, 8);
	if (b[4] & 0x80)
		return vs_err(err, 0, "rtc: index 0x%02x is past the CMOS RAM", b[4]);
	if (offset > RTC_OFFSET_MAX || offset < -RTC_OFFSET_MAX)
		return vs_err(err, 0, "rtc: offset of %lld s from the host clock",
			      (long long)offset);
	pthread_mutex_lock(&r->lock);
	int64_t ns = r->clock.now_ns(r->clock.ctx);
	r->index = b[4];
	memcpy(r->cmos, b + 5, sizeof(r->cmos));
	r->cmos[RTC_REG_A] &= (uint8_t)~REG_A_UIP;
	r->offset = offset;
	/* The seconds the VM spent as files raise no burst of update or alarm flags: it
	 * starts again from now, with what was pending at the snapshot (register C). */
	r->last_s = rtc_seconds(r, ns);
	r->latch_ns = -1;
	r->level = -1; /* drive the line once, whatever it was */
	drive_irq(r);
	arm_timer(r, ns);
	pthread_mutex_unlock(&r->lock);
	return 0;
}
