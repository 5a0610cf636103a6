#include "vmm/devices/rtc.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "vmm/bus.h"

enum {
	RTC_SECONDS = 0x00,
	RTC_MINUTES = 0x02,
	RTC_HOURS = 0x04,
	RTC_WEEKDAY = 0x06,
	RTC_DAY = 0x07,
	RTC_MONTH = 0x08,
	RTC_YEAR = 0x09,
	RTC_REG_A = 0x0a,
	RTC_REG_B = 0x0b,
	RTC_REG_C = 0x0c,
	RTC_REG_D = 0x0d,
	RTC_CENTURY = 0x32,
};

#define REG_B_24H 0x02
#define REG_B_BINARY 0x04
#define REG_D_VRT 0x80

struct rtc {
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t cmos[128]; /* non-time registers the guest may use as scratch */
};

struct rtc *rtc_new(void)
{
	struct rtc *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	pthread_mutex_init(&r->lock, NULL);
	r->cmos[RTC_REG_A] = 0x26; /* 32.768 kHz divider, 1024 Hz rate, UIP clear */
	r->cmos[RTC_REG_B] = REG_B_24H;
	return r;
}

void rtc_free(struct rtc *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static uint8_t encode(const struct rtc *r, int v)
{
	if (r->cmos[RTC_REG_B] & REG_B_BINARY)
		return (uint8_t)v;
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static uint8_t hours(const struct rtc *r, int h)
{
	if (r->cmos[RTC_REG_B] & REG_B_24H)
		return encode(r, h);
	/* 12-hour mode: 12, 1..11 with bit 7 for PM */
	int h12 = h % 12 ? h % 12 : 12;
	return (uint8_t)(encode(r, h12) | (h >= 12 ? 0x80 : 0));
}

static uint8_t read_reg(struct rtc *r, uint8_t reg)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	switch (reg) {
	case RTC_SECONDS:
		return encode(r, tm.tm_sec > 59 ? 59 : tm.tm_sec);
	case RTC_MINUTES:
		return encode(r, tm.tm_min);
	case RTC_HOURS:
		return hours(r, tm.tm_hour);
	case RTC_WEEKDAY:
		return encode(r, tm.tm_wday + 1);
	case RTC_DAY:
		return encode(r, tm.tm_mday);
	case RTC_MONTH:
		return encode(r, tm.tm_mon + 1);
	case RTC_YEAR:
		return encode(r, (tm.tm_year + 1900) % 100);
	case RTC_CENTURY:
		return encode(r, (tm.tm_year + 1900) / 100);
	case RTC_REG_C:
		return 0; /* no alarm/periodic/update interrupts are emulated */
	case RTC_REG_D:
		return REG_D_VRT;
	default:
		return r->cmos[reg];
	}
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
	if (!is_write) {
		*v = read_reg(r, r->index);
		return;
	}
	switch (r->index) {
	case RTC_REG_A:
		r->cmos[RTC_REG_A] = *v & 0x7f; /* UIP is read-only */
		break;
	case RTC_REG_B:
		r->cmos[RTC_REG_B] = *v;
		break;
	case RTC_REG_C:
	case RTC_REG_D:
		break;
	case RTC_SECONDS:
	case RTC_MINUTES:
	case RTC_HOURS:
	case RTC_WEEKDAY:
	case RTC_DAY:
	case RTC_MONTH:
	case RTC_YEAR:
	case RTC_CENTURY:
		break; /* the clock follows the host; setting it is ignored */
	default:
		r->cmos[r->index] = *v;
		break;
	}
}

void rtc_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct rtc *r = opaque;
	pthread_mutex_lock(&r->lock);
	bus_each_byte(rtc_byte, r, offset, data, len, is_write);
	pthread_mutex_unlock(&r->lock);
}
