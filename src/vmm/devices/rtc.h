/* CMOS RTC at 0x70/0x71: the host's current UTC time, BCD or binary per register B. */
#ifndef VESSEL_VMM_DEVICES_RTC_H
#define VESSEL_VMM_DEVICES_RTC_H

#include <stdbool.h>
#include <stdint.h>

struct rtc;

struct rtc *rtc_new(void);
void rtc_free(struct rtc *r);
void rtc_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif
