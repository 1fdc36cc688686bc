/* Unit tests for the CMOS RTC: BCD/binary and 12/24-hour encodings of a fixed host time,
 * status registers, CMOS RAM, and the guest setting the clock (offset kept as time moves). */
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

struct fixture {
    struct rtc rtc;
    time_t now;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bcd_24_hour_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_and_12_hour, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_follows_host_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guest_sets_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cmos_ram_and_read_only_registers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
