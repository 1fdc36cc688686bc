/* rtc.elf: reads the CMOS RTC as an OS does (UIP wait, BCD or binary, 12 or 24 hours,
 * century register) and prints the time in UTC; exits 0 if it is a sane, valid time. */
#include "kiln/vm/platform.h"
#include "runtime/guest.h"

#define RTC_INDEX (PLATFORM_RTC_PORT)
#define RTC_DATA  (PLATFORM_RTC_PORT + 1)

/* MC146818 register indices; the century register is where PC firmware and kiln's FADT
 * CENTURY field put it. */
enum {
    REG_SECONDS = 0x00,
    REG_MINUTES = 0x02,
    REG_HOURS = 0x04,
    REG_DAY = 0x07,
    REG_MONTH = 0x08,
    REG_YEAR = 0x09,
    REG_STATUS_A = 0x0a,
    REG_STATUS_B = 0x0b,
    REG_STATUS_D = 0x0d,
    REG_CENTURY = 0x32,
};
#define STATUS_A_UIP    0x80 /* update in progress: the time registers are changing */
#define STATUS_B_SET    0x80
#define STATUS_B_BINARY 0x04 /* DM: binary, else BCD */
#define STATUS_B_24HOUR 0x02
#define STATUS_D_VALID  0x80 /* VRT: "valid RAM and time" */
#define HOURS_PM        0x80 /* 12-hour mode */
/* Each poll is two port exits (~20 us here); a real UIP lasts under 2 ms. */
#define UIP_POLL_LIMIT 10000
#define READ_ATTEMPTS  5
#define MAX_SKEW       2 /* seconds between the two formats' reads */

struct raw_time {
    uint8_t sec, min, hour, day, month, year, century;
};

struct time {
    unsigned year, month, day, hour, min, sec;
};

static uint8_t cmos_read(uint8_t reg)
{
    outb(RTC_INDEX, reg);
    return inb(RTC_DATA);
}

static void cmos_write(uint8_t reg, uint8_t value)
{
    outb(RTC_INDEX, reg);
    outb(RTC_DATA, value);
}

static int wait_not_updating(void)
{
    for (int i = 0; i < UIP_POLL_LIMIT; i++) {
        if (!(cmos_read(REG_STATUS_A) & STATUS_A_UIP))
            return 0;
    }
    return -1;
}

static void read_raw(struct raw_time *t)
{
    t->sec = cmos_read(REG_SECONDS);
    t->min = cmos_read(REG_MINUTES);
    t->hour = cmos_read(REG_HOURS);
    t->day = cmos_read(REG_DAY);
    t->month = cmos_read(REG_MONTH);
    t->year = cmos_read(REG_YEAR);
    t->century = cmos_read(REG_CENTURY);
}

/* Reading seven registers takes long enough under emulation that a second (or a midnight)
 * can tick over in between; two identical reads in a row are a consistent snapshot. */
static int read_stable(struct raw_time *t)
{
    struct raw_time again;
    if (wait_not_updating() < 0)
        return -1;
    read_raw(t);
    for (int i = 0; i < READ_ATTEMPTS; i++) {
        if (wait_not_updating() < 0)
            return -1;
        read_raw(&again);
        if (memcmp(t, &again, sizeof(again)) == 0)
            return 0;
        *t = again;
    }
    return -1;
}

/* -1 for a byte that is not valid BCD, so garbage cannot pass as a time. */
static int field(uint8_t raw, uint8_t status_b)
{
    if (status_b & STATUS_B_BINARY)
        return raw;
    if ((raw & 0x0f) > 9 || (raw >> 4) > 9)
        return -1;
    return (raw >> 4) * 10 + (raw & 0x0f);
}

static int hours_24(uint8_t raw, uint8_t status_b)
{
    if (status_b & STATUS_B_24HOUR)
        return field(raw, status_b);
    int h = field(raw & (uint8_t)~HOURS_PM, status_b);
    if (h < 1 || h > 12)
        return -1;
    return (h % 12) + ((raw & HOURS_PM) ? 12 : 0);
}

static unsigned days_in_month(unsigned year, unsigned month)
{
    static const uint8_t days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return days[month - 1] + (month == 2 && leap);
}

/* 0 and *out filled when every field is in range, else -1 after saying which is not. */
static int decode(const struct raw_time *r, uint8_t status_b, struct time *out)
{
    int sec = field(r->sec, status_b), min = field(r->min, status_b);
    int hour = hours_24(r->hour, status_b), day = field(r->day, status_b);
    int month = field(r->month, status_b), year = field(r->year, status_b);
    int century = field(r->century, status_b);
    if (century < 19 || century > 29 || year < 0 || year > 99) {
        printf("rtc: bad year: century 0x%x, year 0x%x\n", r->century, r->year);
        return -1;
    }
    out->year = (unsigned)(century * 100 + year);
    if (month < 1 || month > 12 || day < 1 || (unsigned)day > days_in_month(out->year, month)) {
        printf("rtc: bad date: month 0x%x, day 0x%x\n", r->month, r->day);
        return -1;
    }
    if (hour < 0 || hour > 23 || min < 0 || min > 59 || sec < 0 || sec > 59) {
        printf("rtc: bad time of day: hours 0x%x, minutes 0x%x, seconds 0x%x\n", r->hour, r->min,
               r->sec);
        return -1;
    }
    out->month = (unsigned)month;
    out->day = (unsigned)day;
    out->hour = (unsigned)hour;
    out->min = (unsigned)min;
    out->sec = (unsigned)sec;
    return 0;
}

/* Seconds since 1970, only to compare two readings. Days come from the civil-calendar
 * formula (years starting in March, 400-year eras) rather than a loop over years, which
 * would cost a few thousand emulated instructions. */
static int64_t to_seconds(const struct time *t)
{
    int64_t y = (int64_t)t->year - (t->month <= 2);
    int64_t era = y / 400;
    int64_t year_of_era = y - era * 400;
    int64_t month_from_march = t->month > 2 ? t->month - 3 : t->month + 9;
    int64_t day_of_year = (153 * month_from_march + 2) / 5 + t->day - 1;
    int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    int64_t days = era * 146097 + day_of_era - 719468; /* 719468: 0000-03-01 to 1970-01-01 */
    return ((days * 24 + t->hour) * 60 + t->min) * 60 + t->sec;
}

static void print_time(const char *prefix, const struct time *t)
{
    printf("%s%u-%02u-%02u %02u:%02u:%02u UTC\n", prefix, t->year, t->month, t->day, t->hour,
           t->min, t->sec);
}

static int read_time(uint8_t status_b, struct time *t)
{
    struct raw_time raw;
    if (read_stable(&raw) < 0) {
        puts("rtc: no stable reading (update in progress for too long, or changing)");
        return -1;
    }
    return decode(&raw, status_b, t);
}

/* Reads the clock again in the other data mode and hour format, as an OS that prefers them
 * would set them, and checks both readings name the same moment. Status B is restored. */
static int check_other_format(uint8_t status_b, const struct time *first)
{
    uint8_t other = (uint8_t)(status_b ^ (STATUS_B_BINARY | STATUS_B_24HOUR));
    other &= (uint8_t)~STATUS_B_SET;
    cmos_write(REG_STATUS_B, other);
    uint8_t readback = cmos_read(REG_STATUS_B);
    struct time t;
    int r = readback == other ? read_time(other, &t) : -1;
    cmos_write(REG_STATUS_B, status_b);
    if (readback != other) {
        printf("rtc: Status B reads 0x%x after writing 0x%x\n", readback, other);
        return -1;
    }
    if (r < 0)
        return -1;
    printf("rtc: as %s, %s-hour: ", (other & STATUS_B_BINARY) ? "binary" : "BCD",
           (other & STATUS_B_24HOUR) ? "24" : "12");
    print_time("", &t);
    int64_t skew = to_seconds(&t) - to_seconds(first);
    if (skew < 0 || skew > MAX_SKEW) {
        printf("rtc: the two readings are %ld s apart\n", (long)skew);
        return -1;
    }
    return 0;
}

int guest_main(void)
{
    uint8_t status_b = cmos_read(REG_STATUS_B);
    uint8_t status_d = cmos_read(REG_STATUS_D);
    /* Unclaimed ports float high; no real RTC has SET and every other bit of B on. */
    if (status_b == 0xff && status_d == 0xff) {
        puts("rtc: no RTC at port 0x70 (its registers read 0xff)");
        return GUEST_EXIT_FAIL;
    }
    printf("rtc: status B 0x%x (%s, %s-hour), status D 0x%x\n", status_b,
           (status_b & STATUS_B_BINARY) ? "binary" : "BCD",
           (status_b & STATUS_B_24HOUR) ? "24" : "12", status_d);
    if (!(status_d & STATUS_D_VALID)) {
        puts("rtc: status D says the time is not valid");
        return GUEST_EXIT_FAIL;
    }
    struct time t;
    if (read_time(status_b, &t) < 0)
        return GUEST_EXIT_FAIL;
    print_time("rtc: ", &t);
    if (check_other_format(status_b, &t) < 0)
        return GUEST_EXIT_FAIL;
    return GUEST_EXIT_PASS;
}
