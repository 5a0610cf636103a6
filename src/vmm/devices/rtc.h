/* MC146818 CMOS RTC at 0x70/0x71, IRQ 8: the host's UTC time plus whatever offset the
 * guest set, BCD or binary and 12/24 h per register B, century at 0x32, update-ended
 * and alarm interrupts, 128 bytes of CMOS RAM. */
#ifndef VESSEL_VMM_DEVICES_RTC_H
#define VESSEL_VMM_DEVICES_RTC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "vmm/devices/irq.h"

#define RTC_PORT 0x70
#define RTC_IRQ 8
#define RTC_CENTURY_REG 0x32 /* the FADT's CENTURY field names it */

/* Where the RTC reads the time: CLOCK_REALTIME in ns unless a test gives its own. */
struct rtc_clock {
	int64_t (*now_ns)(void *ctx);
	void *ctx;
};

struct rtc;

/* clock NULL: the host's CLOCK_REALTIME. */
struct rtc *rtc_new(struct irq_line irq, const struct rtc_clock *clock);
/* Starts the thread that raises update and alarm interrupts when they are due (host
 * clock only). Without it flags are still set, on the guest's next access. */
int rtc_start(struct rtc *r, vs_err_t *err);
void rtc_free(struct rtc *r);
void rtc_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
/* Sets the flags due by now and raises the IRQ if enabled: what the thread does once a
 * second while an interrupt is enabled. Exposed for tests. */
void rtc_tick(struct rtc *r);

/* The device kind's save/restore (state is a struct rtc). */
int rtc_save(void *state, void **blob, size_t *len, vs_err_t *err);
int rtc_restore(void *state, const void *blob, size_t len, vs_err_t *err);

#endif
