/* Unit tests for the CMOS RTC: BCD/binary and 12/24-hour encodings of a fixed host time,
 * status registers, CMOS RAM, and the guest setting the clock (offset kept as time moves);
 * and its snapshot state: save, restore into a fresh RTC, and each value restore refuses. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kiln/devices/rtc.h"

static time_t fixed_clock(void *ctx)
{
    return *(time_t *)ctx;
}

struct bad_state;

struct fixture {
    struct rtc rtc;
    time_t now;
    const struct bad_state *bad; /* the state tests' case, if any */
};

static int setup(void **state)
{
    const struct bad_state *bad = *state; /* cmocka's prestate: NULL but for state cases */
    struct fixture *f = calloc(1, sizeof(*f));
    f->bad = bad;
    struct tm tm = {
        .tm_year = 126, .tm_mon = 10, .tm_mday = 23, .tm_hour = 21, .tm_min = 30, .tm_sec = 5};
    f->now = timegm(&tm); /* Monday 2026-11-23 21:30:05 UTC */
    rtc_init(&f->rtc, fixed_clock, &f->now);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    rtc_destroy(&f->rtc);
    free(f);
    return 0;
}

static uint8_t rd(struct fixture *f, uint8_t reg)
{
    uint8_t v;
    rtc_bus_ops.write(&f->rtc, 0, &reg, 1);
    rtc_bus_ops.read(&f->rtc, 1, &v, 1);
    return v;
}

static void wr(struct fixture *f, uint8_t reg, uint8_t value)
{
    rtc_bus_ops.write(&f->rtc, 0, &reg, 1);
    rtc_bus_ops.write(&f->rtc, 1, &value, 1);
}

static void test_bcd_24_hour_defaults(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(rd(f, 0x00), 0x05);
    assert_int_equal(rd(f, 0x02), 0x30);
    assert_int_equal(rd(f, 0x04), 0x21);
    assert_int_equal(rd(f, 0x06), 0x02); /* Monday: 1 = Sunday */
    assert_int_equal(rd(f, 0x07), 0x23);
    assert_int_equal(rd(f, 0x08), 0x11);
    assert_int_equal(rd(f, 0x09), 0x26);
    assert_int_equal(rd(f, RTC_REG_CENTURY), 0x20);
    assert_int_equal(rd(f, 0x0a) & 0x80, 0); /* never "update in progress" */
    assert_int_equal(rd(f, 0x0b), 0x02);
    assert_int_equal(rd(f, 0x0d), 0x80); /* valid */
    assert_int_equal(rd(f, 0x0c), 0x00);
    /* The NMI-disable bit of the index does not change which register is read. */
    assert_int_equal(rd(f, 0x80 | 0x09), 0x26);
}

static void test_binary_and_12_hour(void **state)
{
    struct fixture *f = *state;
    wr(f, 0x0b, 0x04);                       /* binary, 12-hour */
    assert_int_equal(rd(f, 0x04), 0x80 | 9); /* 9 pm */
    assert_int_equal(rd(f, 0x00), 5);
    assert_int_equal(rd(f, 0x09), 26);
    f->now += 3 * 3600; /* 00:30 next day: 12 am */
    assert_int_equal(rd(f, 0x04), 12);
    assert_int_equal(rd(f, 0x07), 24);
}

static void test_time_follows_host_clock(void **state)
{
    struct fixture *f = *state;
    f->now += 61;
    assert_int_equal(rd(f, 0x00), 0x06);
    assert_int_equal(rd(f, 0x02), 0x31);
}

static void test_guest_sets_clock(void **state)
{
    struct fixture *f = *state;
    /* hwclock's way: SET, write the fields, clear SET. */
    wr(f, 0x0b, 0x82);
    wr(f, 0x09, 0x30);                   /* 2030 */
    wr(f, 0x04, 0x08);                   /* 08:xx */
    assert_int_equal(rd(f, 0x09), 0x30); /* frozen while SET */
    f->now += 10;
    assert_int_equal(rd(f, 0x00), 0x05);
    wr(f, 0x0b, 0x02);
    assert_int_equal(rd(f, 0x09), 0x30);
    assert_int_equal(rd(f, 0x04), 0x08);
    assert_int_equal(rd(f, 0x00), 0x05); /* the guest's seconds, as written */
    f->now += 20;
    assert_int_equal(rd(f, 0x00), 0x25); /* and its clock keeps running */
    assert_int_equal(rd(f, 0x02), 0x30);
    /* A single register written without SET moves just that field. */
    wr(f, 0x02, 0x45);
    assert_int_equal(rd(f, 0x02), 0x45);
    assert_int_equal(rd(f, 0x04), 0x08);
}

static void test_cmos_ram_and_read_only_registers(void **state)
{
    struct fixture *f = *state;
    wr(f, 0x40, 0xab);
    wr(f, 0x7f, 0xcd);
    assert_int_equal(rd(f, 0x40), 0xab);
    assert_int_equal(rd(f, 0x7f), 0xcd);
    wr(f, 0x0d, 0x00);
    assert_int_equal(rd(f, 0x0d), 0x80);
    wr(f, 0x0a, 0xff);
    assert_int_equal(rd(f, 0x0a), 0x7f);
    uint8_t v;
    rtc_bus_ops.read(&f->rtc, 0, &v, 1);
    assert_int_equal(v, 0xff); /* index port is write-only */
}

/* ---- Snapshot state ------------------------------------------------------------------------ */

/* Binary 24-hour mode, a guest-set clock in 2031, CMOS RAM and the alarm bytes written, and
 * the index left on a RAM byte. */
static void drive_into_busy_state(struct fixture *f)
{
    wr(f, 0x0b, 0x86); /* SET, binary, 24-hour */
    wr(f, 0x09, 31);
    wr(f, 0x08, 2);
    wr(f, 0x07, 14);
    wr(f, 0x04, 6);
    wr(f, 0x0b, 0x06); /* clear SET: the guest's clock runs from here */
    wr(f, 0x01, 0x30); /* alarm seconds, minutes, hours */
    wr(f, 0x03, 0x15);
    wr(f, 0x05, 0x07);
    wr(f, 0x0a, 0x2f);
    for (uint8_t i = 0x0e; i < RTC_CMOS_SIZE; i++)
        if (i != RTC_REG_CENTURY)
            wr(f, i, (uint8_t)(i * 7 + 1));
    uint8_t index = 0x40;
    rtc_bus_ops.write(&f->rtc, 0, &index, 1);
}

/* What the guest reads from every register, the time ones included. */
static void guest_reads(struct fixture *f, uint8_t *out)
{
    uint8_t v;
    rtc_bus_ops.read(&f->rtc, 1, &v, 1); /* at the saved index, before any index write */
    out[0] = v;
    for (unsigned i = 0; i < RTC_CMOS_SIZE; i++)
        out[1 + i] = rd(f, (uint8_t)i);
}

static void test_state_round_trip(void **state)
{
    struct fixture *f = *state;
    drive_into_busy_state(f);
    struct rtc_state saved, again;
    rtc_save(&f->rtc, &saved);
    assert_int_equal(saved.index, 0x40);
    assert_true(saved.offset_seconds > 4 * 365 * 86400LL); /* 2031 on a 2026 host */
    assert_int_equal(saved.cmos[0x09], 0);                 /* the running clock: not saved */
    assert_int_equal(saved.cmos[0x05], 0x07);              /* the alarm: saved */

    void *fresh = NULL;
    setup(&fresh);
    struct fixture *t = fresh;
    struct error err = {.msg = ""};
    assert_int_equal(rtc_restore(&t->rtc, &saved, &err), 0);
    rtc_save(&t->rtc, &again);
    assert_memory_equal(&saved, &again, sizeof(saved));

    uint8_t before[1 + RTC_CMOS_SIZE], after[1 + RTC_CMOS_SIZE];
    guest_reads(f, before);
    guest_reads(t, after);
    assert_memory_equal(before, after, sizeof(before));
    assert_int_equal(before[0], (uint8_t)(0x40 * 7 + 1));
    assert_int_equal(before[1 + 0x09], 31);
    assert_int_equal(before[1 + 0x04], 6);

    /* Host time moves on for both: the restored clock keeps the guest's offset. */
    f->now += 3600;
    t->now += 3600;
    assert_int_equal(rd(f, 0x04), 7);
    assert_int_equal(rd(t, 0x04), 7);
    teardown(&fresh);
}

/* A guest caught mid-edit (B.SET held) gets its half-written time back, still frozen. */
static void test_state_round_trip_while_setting(void **state)
{
    struct fixture *f = *state;
    wr(f, 0x0b, 0x82);
    wr(f, 0x02, 0x59);
    wr(f, 0x09, 0x40);
    struct rtc_state saved;
    rtc_save(&f->rtc, &saved);

    void *fresh = NULL;
    setup(&fresh);
    struct fixture *t = fresh;
    t->now += 1000; /* restored later: frozen time registers do not move */
    assert_int_equal(rtc_restore(&t->rtc, &saved, NULL), 0);
    assert_int_equal(rd(t, 0x02), 0x59);
    assert_int_equal(rd(t, 0x09), 0x40);
    wr(t, 0x0b, 0x02); /* the guest finishes: its clock now reads 2040 */
    assert_int_equal(rd(t, 0x09), 0x40);
    assert_int_equal(rd(t, 0x02), 0x59);
    teardown(&fresh);
}

/* One value restore must refuse, and the line it must say. */
struct bad_state {
    const char *name;
    void (*corrupt)(struct rtc_state *s);
    const char *message;
};

static void bad_index(struct rtc_state *s)
{
    s->index = 0x80; /* the NMI-disable bit is never kept */
}
static void bad_offset(struct rtc_state *s)
{
    s->offset_seconds = INT64_MIN;
}
static void bad_uip(struct rtc_state *s)
{
    s->cmos[0x0a] |= 0x80;
}
static void bad_status_c(struct rtc_state *s)
{
    s->cmos[0x0c] = 0x10;
}
static void bad_status_d(struct rtc_state *s)
{
    s->cmos[0x0d] = 0x00;
}
static void bad_clock_byte(struct rtc_state *s)
{
    s->cmos[0x04] = 0x21; /* an hour, saved while the clock runs */
}
static void bad_pad(struct rtc_state *s)
{
    s->pad[6] = 0x01;
}

static const struct bad_state bad_states[] = {
    {"test_state_rejects_index_out_of_range", bad_index,
     "RTC state: index is 0x80 (expected below 0x80)"},
    {"test_state_rejects_offset_out_of_range", bad_offset,
     "RTC state: offset_seconds is -9223372036854775808 (expected within +-1000000000000)"},
    {"test_state_rejects_update_in_progress", bad_uip,
     "RTC state: register A is 0xaf (expected UIP, bit 7, clear)"},
    {"test_state_rejects_status_c_flags", bad_status_c,
     "RTC state: register C is 0x10 (expected 0)"},
    {"test_state_rejects_status_d_invalid", bad_status_d,
     "RTC state: register D is 0x00 (expected 0x80)"},
    {"test_state_rejects_clock_byte_while_running", bad_clock_byte,
     "RTC state: cmos[0x04] is 0x21 while the clock runs (expected 0: the running clock is "
     "computed at each read)"},
    {"test_state_rejects_pad_not_zero", bad_pad, "RTC state: pad[6] is 0x01 (expected 0)"},
};

static void test_state_rejects(void **state)
{
    struct fixture *f = *state;
    drive_into_busy_state(f);
    struct rtc_state good, bad, after;
    rtc_save(&f->rtc, &good);
    bad = good;
    f->bad->corrupt(&bad);
    struct error err = {.msg = ""};
    assert_int_equal(rtc_restore(&f->rtc, &bad, &err), -EINVAL);
    assert_string_equal(err.msg, f->bad->message);
    rtc_save(&f->rtc, &after);
    assert_memory_equal(&good, &after, sizeof(good)); /* unchanged */
}

/* One cmocka test per bad value, named after it. */
#define BAD_STATE_TEST(i)                                                                          \
    {                                                                                              \
        bad_states[i].name, test_state_rejects, setup, teardown, (void *)&bad_states[i]            \
    }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bcd_24_hour_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_and_12_hour, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_follows_host_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guest_sets_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cmos_ram_and_read_only_registers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_round_trip_while_setting, setup, teardown),
        BAD_STATE_TEST(0),
        BAD_STATE_TEST(1),
        BAD_STATE_TEST(2),
        BAD_STATE_TEST(3),
        BAD_STATE_TEST(4),
        BAD_STATE_TEST(5),
        BAD_STATE_TEST(6),
    };
    _Static_assert(sizeof(bad_states) / sizeof(bad_states[0]) == 7, "a test per bad state");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
