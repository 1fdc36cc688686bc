/* MC146818-style CMOS RTC on ports 0x70/0x71: the host's time (UTC) in BCD or binary, a
 * settable offset, and 114 bytes of CMOS RAM. Without one, Linux's rtc_cmos probe stalls. */
#ifndef KILN_DEVICES_RTC_H
#define KILN_DEVICES_RTC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "kiln/vm/bus.h"
#include "kiln/vm/platform.h"
#include "kiln/util/error.h"

#define RTC_CMOS_SIZE   128
#define RTC_REG_CENTURY PLATFORM_RTC_CENTURY_INDEX /* the ACPI FADT CENTURY field points here */

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

/* What the guest can observe of the RTC, as plain bytes for a snapshot.
 *
 * Saved: the 128 CMOS bytes (RAM, alarm bytes, registers A-D, and the clock registers, which
 * matter only while the guest holds B.SET to edit them: otherwise every read recomputes them,
 * and they are saved as zero), the selected index, and the guest's offset from the host's UTC.
 *
 * Not saved: the time itself. After a restore the clock reads host time plus the offset, so
 * it behaves like a battery-backed RTC: it counted on while the VM was saved, and a guest
 * that never set it keeps reading the host's UTC, as in a freshly started kiln VM. (The
 * guest's kvmclock is what resumes where it stopped; see vm_state.h.) */
struct rtc_state {
    int64_t offset_seconds; /* guest time minus host time; |offset| <= RTC_OFFSET_LIMIT */
    uint8_t cmos[RTC_CMOS_SIZE];
    uint8_t index; /* < RTC_CMOS_SIZE: the NMI-disable bit is not kept */
    uint8_t pad[7];
};
_Static_assert(sizeof(struct rtc_state) == 8 + RTC_CMOS_SIZE + 8, "rtc_state: no padding");

/* Far more than a guest can set (BCD or binary century and year 0xff: year 25755), small
 * enough that host time plus the offset stays a valid time_t. */
#define RTC_OFFSET_LIMIT 1000000000000LL

/* Copies the guest-visible state out, under the RTC lock. */
void rtc_save(const struct rtc *rtc, struct rtc_state *out);
/* Checks every field of in and only then loads it; -EINVAL with one line in err naming the
 * field, the device unchanged, if a value is one this RTC can never hold. */
int rtc_restore(struct rtc *rtc, const struct rtc_state *in, struct error *err);

#endif
