/* MC146818-style CMOS RTC on ports 0x70/0x71: the host's time (UTC) in BCD or binary, a
 * settable offset, and 114 bytes of CMOS RAM. Without one, Linux's rtc_cmos probe stalls. */
#ifndef KILN_DEVICES_RTC_H
#define KILN_DEVICES_RTC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "kiln/bus.h"

#define RTC_CMOS_SIZE   128
#define RTC_REG_CENTURY 0x32 /* the ACPI FADT CENTURY field points here */

struct rtc {
    pthread_mutex_t lock;
    uint8_t index;
    uint8_t cmos[RTC_CMOS_SIZE];
    int64_t offset_seconds;   /* guest time minus host time, after the guest sets the clock */
    time_t (*now)(void *ctx); /* host clock (tests substitute a fixed one) */
    void *now_ctx;
};

/* now NULL: the host's real-time clock. */
void rtc_init(struct rtc *rtc, time_t (*now)(void *ctx), void *now_ctx);
void rtc_destroy(struct rtc *rtc);

/* Register at PLATFORM_RTC_PORT, length 2. */
extern const struct bus_ops rtc_bus_ops;

#endif
