/* CMOS RTC: time registers are computed from the host clock at each read (never stale, no
 * timer), a guest write to them moves an offset, and the update-in-progress bit never sets.
 * Also its state for snapshots. */
#include <errno.h>
#include <string.h>

#include "kiln/devices/rtc.h"

enum {
    REG_SECONDS = 0x00,
    REG_MINUTES = 0x02,
    REG_HOURS = 0x04,
    REG_WEEKDAY = 0x06,
    REG_DAY = 0x07,
    REG_MONTH = 0x08,
    REG_YEAR = 0x09,
    REG_STATUS_A = 0x0a,
    REG_STATUS_B = 0x0b,
    REG_STATUS_C = 0x0c,
    REG_STATUS_D = 0x0d,
};
#define STATUS_A_DEFAULT  0x26 /* 32.768 kHz time base, 1024 Hz rate; UIP (bit 7) clear */
#define STATUS_A_UIP      0x80
#define STATUS_B_SET      0x80 /* guest is setting the time: freeze updates */
#define STATUS_B_BINARY   0x04 /* DM: binary instead of BCD */
#define STATUS_B_24HOUR   0x02
#define STATUS_D_VALID    0x80 /* "RAM and time are valid" (battery good) */
#define INDEX_NMI_DISABLE 0x80
#define HOUR_PM           0x80 /* 12-hour mode: bit 7 of the hours register */

static time_t host_now(void *ctx)
{
    (void)ctx;
    return time(NULL);
}

void rtc_init(struct rtc *rtc, time_t (*now)(void *ctx), void *now_ctx)
{
    memset(rtc, 0, sizeof(*rtc));
    pthread_mutex_init(&rtc->lock, NULL);
    rtc->now = now ? now : host_now;
    rtc->now_ctx = now_ctx;
    rtc->cmos[REG_STATUS_A] = STATUS_A_DEFAULT;
    rtc->cmos[REG_STATUS_B] = STATUS_B_24HOUR; /* BCD, 24-hour: what a PC BIOS leaves */
    rtc->cmos[REG_STATUS_D] = STATUS_D_VALID;
}

void rtc_destroy(struct rtc *rtc)
{
    pthread_mutex_destroy(&rtc->lock);
}

static uint8_t encode(const struct rtc *rtc, unsigned value)
{
    if (rtc->cmos[REG_STATUS_B] & STATUS_B_BINARY)
        return (uint8_t)value;
    return (uint8_t)(((value / 10) << 4) | (value % 10));
}

static unsigned decode(const struct rtc *rtc, uint8_t value)
{
    if (rtc->cmos[REG_STATUS_B] & STATUS_B_BINARY)
        return value;
    return (unsigned)((value >> 4) * 10 + (value & 0x0f));
}

static uint8_t encode_hours(const struct rtc *rtc, int hours)
{
    if (rtc->cmos[REG_STATUS_B] & STATUS_B_24HOUR)
        return encode(rtc, (unsigned)hours);
    unsigned twelve = hours % 12 == 0 ? 12 : (unsigned)(hours % 12);
    return (uint8_t)(encode(rtc, twelve) | (hours >= 12 ? HOUR_PM : 0));
}

static int decode_hours(const struct rtc *rtc, uint8_t value)
{
    if (rtc->cmos[REG_STATUS_B] & STATUS_B_24HOUR)
        return (int)decode(rtc, value);
    int hours = (int)decode(rtc, value & ~HOUR_PM) % 12;
    return (value & HOUR_PM) ? hours + 12 : hours;
}

/* Fill the time registers from the host clock plus the guest's offset. */
static void latch_time(struct rtc *rtc)
{
    time_t t = rtc->now(rtc->now_ctx) + (time_t)rtc->offset_seconds;
    struct tm tm;
    gmtime_r(&t, &tm);
    rtc->cmos[REG_SECONDS] = encode(rtc, (unsigned)tm.tm_sec);
    rtc->cmos[REG_MINUTES] = encode(rtc, (unsigned)tm.tm_min);
    rtc->cmos[REG_HOURS] = encode_hours(rtc, tm.tm_hour);
    rtc->cmos[REG_WEEKDAY] = encode(rtc, (unsigned)tm.tm_wday + 1);
    rtc->cmos[REG_DAY] = encode(rtc, (unsigned)tm.tm_mday);
    rtc->cmos[REG_MONTH] = encode(rtc, (unsigned)tm.tm_mon + 1);
    rtc->cmos[REG_YEAR] = encode(rtc, (unsigned)(tm.tm_year + 1900) % 100);
    rtc->cmos[RTC_REG_CENTURY] = encode(rtc, (unsigned)(tm.tm_year + 1900) / 100);
}

/* The guest wrote the time registers: remember how far its clock is from the host's. */
static void adopt_guest_time(struct rtc *rtc)
{
    struct tm tm = {
        .tm_sec = (int)decode(rtc, rtc->cmos[REG_SECONDS]),
        .tm_min = (int)decode(rtc, rtc->cmos[REG_MINUTES]),
        .tm_hour = decode_hours(rtc, rtc->cmos[REG_HOURS]),
        .tm_mday = (int)decode(rtc, rtc->cmos[REG_DAY]),
        .tm_mon = (int)decode(rtc, rtc->cmos[REG_MONTH]) - 1,
        .tm_year = (int)(decode(rtc, rtc->cmos[RTC_REG_CENTURY]) * 100 +
                         decode(rtc, rtc->cmos[REG_YEAR])) -
                   1900,
    };
    time_t guest = timegm(&tm);
    if (guest != (time_t)-1)
        rtc->offset_seconds = (int64_t)(guest - rtc->now(rtc->now_ctx));
}

/* The registers latch_time() fills: the clock, as opposed to the alarm bytes between them. */
static const uint8_t clock_registers[] = {REG_SECONDS, REG_MINUTES, REG_HOURS, REG_WEEKDAY,
                                          REG_DAY,     REG_MONTH,   REG_YEAR,  RTC_REG_CENTURY};
#define NCLOCK_REGISTERS (sizeof(clock_registers) / sizeof(clock_registers[0]))

static bool is_time_register(uint8_t reg)
{
    return reg <= REG_YEAR || reg == RTC_REG_CENTURY;
}

static uint8_t read_data(struct rtc *rtc)
{
    uint8_t reg = rtc->index;
    bool frozen = rtc->cmos[REG_STATUS_B] & STATUS_B_SET;
    if (is_time_register(reg) && !frozen)
        latch_time(rtc);
    if (reg == REG_STATUS_C) {
        uint8_t flags = rtc->cmos[REG_STATUS_C];
        rtc->cmos[REG_STATUS_C] = 0; /* reading C acknowledges its interrupt flags */
        return flags;
    }
    return rtc->cmos[reg];
}

static void write_data(struct rtc *rtc, uint8_t value)
{
    uint8_t reg = rtc->index;
    switch (reg) {
    case REG_STATUS_A:
        rtc->cmos[reg] = value & (uint8_t)~STATUS_A_UIP; /* UIP is read-only */
        break;
    case REG_STATUS_B: {
        bool was_frozen = rtc->cmos[reg] & STATUS_B_SET;
        if (!was_frozen && (value & STATUS_B_SET))
            latch_time(rtc); /* the guest edits a snapshot of the current time */
        rtc->cmos[reg] = value;
        if (was_frozen && !(value & STATUS_B_SET))
            adopt_guest_time(rtc);
        break;
    }
    case REG_STATUS_C:
    case REG_STATUS_D:
        break; /* read-only */
    default:
        if (is_time_register(reg) && !(rtc->cmos[REG_STATUS_B] & STATUS_B_SET))
            latch_time(rtc); /* a single-register update changes just that field */
        rtc->cmos[reg] = value;
        if (is_time_register(reg) && !(rtc->cmos[REG_STATUS_B] & STATUS_B_SET))
            adopt_guest_time(rtc);
        break;
    }
}

static void rtc_read(void *opaque, uint64_t offset, uint8_t *data, unsigned size)
{
    struct rtc *rtc = opaque;
    pthread_mutex_lock(&rtc->lock);
    data[0] = offset == 0 ? 0xff : read_data(rtc); /* the index port is write-only */
    pthread_mutex_unlock(&rtc->lock);
    for (unsigned i = 1; i < size; i++)
        data[i] = 0xff;
}

static void rtc_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size)
{
    struct rtc *rtc = opaque;
    pthread_mutex_lock(&rtc->lock);
    if (offset == 0)
        rtc->index = data[0] & (uint8_t)~INDEX_NMI_DISABLE; /* NMI masking is not modelled */
    else
        write_data(rtc, data[0]);
    pthread_mutex_unlock(&rtc->lock);
}

const struct bus_ops rtc_bus_ops = {.read = rtc_read, .write = rtc_write};

void rtc_save(const struct rtc *rtc, struct rtc_state *out)
{
    /* The lock is the one thing save changes; the device itself is read-only here. */
    pthread_mutex_t *lock = (pthread_mutex_t *)&rtc->lock;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(lock);
    out->offset_seconds = rtc->offset_seconds;
    memcpy(out->cmos, rtc->cmos, sizeof(out->cmos));
    out->index = rtc->index;
    pthread_mutex_unlock(lock);
    /* While the clock runs, the clock registers hold whatever the last read latched: not
     * guest-visible (every read recomputes them), so not saved. */
    if (!(out->cmos[REG_STATUS_B] & STATUS_B_SET)) {
        for (size_t i = 0; i < NCLOCK_REGISTERS; i++)
            out->cmos[clock_registers[i]] = 0;
    }
}

static int check_state(const struct rtc_state *in, struct error *err)
{
    if (in->index >= RTC_CMOS_SIZE)
        return error_fmt(err, -EINVAL, "RTC state: index is 0x%02x (expected below 0x%02x)",
                         in->index, RTC_CMOS_SIZE);
    if (in->offset_seconds > RTC_OFFSET_LIMIT || in->offset_seconds < -RTC_OFFSET_LIMIT)
        return error_fmt(err, -EINVAL, "RTC state: offset_seconds is %lld (expected within +-%lld)",
                         (long long)in->offset_seconds, (long long)RTC_OFFSET_LIMIT);
    if (in->cmos[REG_STATUS_A] & STATUS_A_UIP)
        return error_fmt(err, -EINVAL,
                         "RTC state: register A is 0x%02x (expected UIP, bit 7, clear)",
                         in->cmos[REG_STATUS_A]);
    /* kiln raises no RTC interrupts, so no flag in C can be set. */
    if (in->cmos[REG_STATUS_C] != 0)
        return error_fmt(err, -EINVAL, "RTC state: register C is 0x%02x (expected 0)",
                         in->cmos[REG_STATUS_C]);
    if (in->cmos[REG_STATUS_D] != STATUS_D_VALID)
        return error_fmt(err, -EINVAL, "RTC state: register D is 0x%02x (expected 0x%02x)",
                         in->cmos[REG_STATUS_D], STATUS_D_VALID);
    for (size_t i = 0; !(in->cmos[REG_STATUS_B] & STATUS_B_SET) && i < NCLOCK_REGISTERS; i++) {
        uint8_t reg = clock_registers[i];
        if (in->cmos[reg] != 0)
            return error_fmt(
                err, -EINVAL,
                "RTC state: cmos[0x%02x] is 0x%02x while the clock runs (expected 0: the "
                "running clock is computed at each read)",
                reg, in->cmos[reg]);
    }
    for (size_t i = 0; i < sizeof(in->pad); i++) {
        if (in->pad[i] != 0)
            return error_fmt(err, -EINVAL, "RTC state: pad[%zu] is 0x%02x (expected 0)", i,
                             in->pad[i]);
    }
    return 0;
}

int rtc_restore(struct rtc *rtc, const struct rtc_state *in, struct error *err)
{
    int r = check_state(in, err);
    if (r < 0)
        return r;
    pthread_mutex_lock(&rtc->lock);
    rtc->offset_seconds = in->offset_seconds;
    memcpy(rtc->cmos, in->cmos, sizeof(rtc->cmos));
    rtc->index = in->index;
    pthread_mutex_unlock(&rtc->lock);
    return 0;
}
