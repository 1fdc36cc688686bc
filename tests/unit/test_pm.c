/* Unit tests for the ACPI power registers: S5 powers off, the reset value resets, other
 * sleep types and values are ignored (one warning), status reads as "not woken". */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kiln/devices/pm.h"
#include "kiln/vm/platform.h"

struct stops {
    enum vm_stop_reason reason;
    int status;
    char message[128];
    int count;
};

static void record_stop(void *opaque, enum vm_stop_reason reason, int status, const char *msg)
{
    struct stops *s = opaque;
    s->reason = reason;
    s->status = status;
    strncpy(s->message, msg, sizeof(s->message) - 1);
    s->count++;
}

static void write_port(struct pm *pm, unsigned port, uint8_t value)
{
    pm_bus_ops.write(pm, port - PLATFORM_PM_PORT, &value, 1);
}

static void test_s5_powers_off(void **state)
{
    struct stops s = {0};
    struct log log = {.level = LOG_ERROR};
    struct pm pm = {.stop = {.request = record_stop, .opaque = &s}, .log = &log};
    write_port(&pm, PLATFORM_PM_SLEEP_CONTROL, PLATFORM_SLEEP_TYPE_S5 << 2); /* no SLP_EN */
    assert_int_equal(s.count, 0);
    write_port(&pm, PLATFORM_PM_SLEEP_CONTROL, (PLATFORM_SLEEP_TYPE_S5 << 2) | 0x20);
    assert_int_equal(s.count, 1);
    assert_int_equal(s.reason, VM_STOP_POWER_OFF);
    assert_int_equal(s.status, 0);
    assert_string_equal(s.message, "guest powered off");
}

static void test_other_sleep_types_ignored(void **state)
{
    struct stops s = {0};
    struct log log = {.level = LOG_ERROR};
    struct pm pm = {.stop = {.request = record_stop, .opaque = &s}, .log = &log};
    write_port(&pm, PLATFORM_PM_SLEEP_CONTROL, (3 << 2) | 0x20); /* S3 */
    write_port(&pm, PLATFORM_PM_SLEEP_CONTROL, (1 << 2) | 0x20);
    assert_int_equal(s.count, 0);
    assert_int_equal(pm.unsupported_logged, 1);
    uint8_t v = 0xff;
    pm_bus_ops.read(&pm, PLATFORM_PM_SLEEP_STATUS - PLATFORM_PM_PORT, &v, 1);
    assert_int_equal(v, 0);
}

static void test_reset_register(void **state)
{
    struct stops s = {0};
    struct log log = {.level = LOG_ERROR};
    struct pm pm = {.stop = {.request = record_stop, .opaque = &s}, .log = &log};
    write_port(&pm, PLATFORM_PM_RESET, 0x06); /* not the FADT's RESET_VALUE */
    assert_int_equal(s.count, 0);
    write_port(&pm, PLATFORM_PM_RESET, PLATFORM_PM_RESET_VALUE);
    assert_int_equal(s.count, 1);
    assert_int_equal(s.reason, VM_STOP_RESET);
    assert_int_equal(s.status, EXIT_GUEST_RESET);
    assert_string_equal(s.message, "guest reset (ACPI reset register)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_s5_powers_off),
        cmocka_unit_test(test_other_sleep_types_ignored),
        cmocka_unit_test(test_reset_register),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
