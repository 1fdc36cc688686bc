/* Unit tests for the port-I/O/MMIO bus: ordering, overlap rejection, lookup at range edges,
 * and the all-ones/ignore behaviour (with counting) for addresses no device claims. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kiln/vm/bus.h"

struct recorder {
    uint64_t last_offset;
    uint8_t last_value;
    unsigned writes;
};

static void rec_read(void *opaque, uint64_t offset, uint8_t *data, unsigned size)
{
    for (unsigned i = 0; i < size; i++)
        data[i] = (uint8_t)(offset + i);
}

static void rec_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size)
{
    struct recorder *r = opaque;
    r->last_offset = offset;
    r->last_value = data[0];
    r->writes++;
}

static const struct bus_ops rec_ops = {.read = rec_read, .write = rec_write};

static struct log quiet_log = {.level = LOG_ERROR};

static void add(struct bus *bus, uint64_t base, uint64_t len, struct recorder *rec)
{
    struct bus_range r = {.base = base, .len = len, .name = "dev", .ops = &rec_ops, .opaque = rec};
    assert_int_equal(bus_register(bus, &r, NULL), 0);
}

static void test_lookup_sorted_and_edges(void **state)
{
    struct bus bus;
    struct recorder a = {0}, b = {0}, c = {0};
    bus_init(&bus, "port I/O", &quiet_log);
    add(&bus, 0x3f8, 8, &a);
    add(&bus, 0x60, 5, &b);
    add(&bus, 0xf4, 4, &c);
    assert_ptr_equal(bus_find(&bus, 0x60)->opaque, &b);
    assert_ptr_equal(bus_find(&bus, 0x64)->opaque, &b);
    assert_null(bus_find(&bus, 0x65));
    assert_null(bus_find(&bus, 0x5f));
    assert_ptr_equal(bus_find(&bus, 0x3ff)->opaque, &a);
    assert_null(bus_find(&bus, 0x400));
    assert_ptr_equal(bus_find(&bus, 0xf7)->opaque, &c);
    bus_destroy(&bus);
}

static void test_overlap_rejected(void **state)
{
    struct bus bus;
    struct recorder a = {0};
    struct error err;
    bus_init(&bus, "MMIO", &quiet_log);
    add(&bus, 0x1000, 0x100, &a);
    struct bus_range overlapping = {.base = 0x10ff, .len = 2, .name = "late", .ops = &rec_ops};
    assert_int_equal(bus_register(&bus, &overlapping, &err), -EEXIST);
    assert_string_equal(err.msg, "MMIO bus: late at 0x10ff overlaps dev at 0x1000");
    struct bus_range below = {.base = 0xf00, .len = 0x101, .name = "low", .ops = &rec_ops};
    assert_int_equal(bus_register(&bus, &below, &err), -EEXIST);
    struct bus_range adjacent = {.base = 0x1100, .len = 1, .name = "next", .ops = &rec_ops};
    assert_int_equal(bus_register(&bus, &adjacent, &err), 0);
    struct bus_range wraps = {.base = UINT64_MAX, .len = 2, .name = "wrap", .ops = &rec_ops};
    assert_int_equal(bus_register(&bus, &wraps, &err), -EINVAL);
    bus_destroy(&bus);
}

static void test_dispatch_and_unknown(void **state)
{
    struct bus bus;
    struct recorder a = {0};
    bus_init(&bus, "port I/O", &quiet_log);
    add(&bus, 0x3f8, 8, &a);

    uint8_t data[4];
    bus_read(&bus, 0x3fa, data, 2);
    assert_int_equal(data[0], 2);
    assert_int_equal(data[1], 3);
    uint8_t value = 0x41;
    bus_write(&bus, 0x3f8, &value, 1);
    assert_int_equal(a.writes, 1);
    assert_int_equal(a.last_offset, 0);
    assert_int_equal(a.last_value, 0x41);

    memset(data, 0, sizeof(data));
    bus_read(&bus, 0x2f8, data, 4);
    assert_memory_equal(data, "\xff\xff\xff\xff", 4);
    bus_write(&bus, 0x2f8, &value, 1);
    /* An access straddling the device's end is not the device's. */
    bus_read(&bus, 0x3ff, data, 2);
    assert_memory_equal(data, "\xff\xff", 2);
    assert_int_equal(a.writes, 1);
    assert_int_equal(bus_unknown_accesses(&bus), 3);
    bus_destroy(&bus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_sorted_and_edges),
        cmocka_unit_test(test_overlap_rejected),
        cmocka_unit_test(test_dispatch_and_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
