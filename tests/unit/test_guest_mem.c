/* Unit tests for guest RAM layout and the one GPA translation: region split around the MMIO
 * hole, every boundary, and lengths/addresses chosen to overflow naive checks. */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kiln/vm/guest_mem.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

static void test_small_vm_single_region(void **state)
{
    struct guest_mem mem;
    assert_int_equal(guest_mem_init(&mem, 16 * MiB, NULL), 0);
    assert_int_equal(mem.nregions, 1);
    assert_int_equal(guest_mem_low_end(&mem), 16 * MiB);
    assert_non_null(guest_mem_ptr(&mem, 0, 16 * MiB));
    assert_non_null(guest_mem_ptr(&mem, 16 * MiB - 1, 1));
    assert_null(guest_mem_ptr(&mem, 16 * MiB - 1, 2));
    assert_null(guest_mem_ptr(&mem, 16 * MiB, 1));
    assert_null(guest_mem_ptr(&mem, 0, 16 * MiB + 1));
    assert_null(guest_mem_ptr(&mem, UINT64_MAX, 1));
    assert_null(guest_mem_ptr(&mem, 4096, UINT64_MAX));
    assert_null(guest_mem_ptr(&mem, 4096, UINT64_MAX - 4095)); /* gpa + len wraps to 0 */
    guest_mem_destroy(&mem);
}

static void test_large_vm_splits_around_hole(void **state)
{
    struct guest_mem mem;
    uint64_t size = GUEST_MMIO_HOLE_START + 64 * MiB;
    assert_int_equal(guest_mem_init(&mem, size, NULL), 0);
    assert_int_equal(mem.nregions, 2);
    assert_int_equal(guest_mem_low_end(&mem), GUEST_MMIO_HOLE_START);
    assert_int_equal(mem.regions[1].gpa, GUEST_MMIO_HOLE_END);
    assert_int_equal(mem.regions[1].size, 64 * MiB);
    assert_null(guest_mem_ptr(&mem, GUEST_MMIO_HOLE_START, 1));
    assert_null(guest_mem_ptr(&mem, GUEST_MMIO_HOLE_END - 1, 1));
    /* A range may not run from low RAM across the hole. */
    assert_null(guest_mem_ptr(&mem, GUEST_MMIO_HOLE_START - 4096, 8192));
    uint8_t *high = guest_mem_ptr(&mem, GUEST_MMIO_HOLE_END, 64 * MiB);
    assert_non_null(high);
    assert_null(guest_mem_ptr(&mem, GUEST_MMIO_HOLE_END + 64 * MiB, 1));
    /* Both views are the same mapping: high RAM follows low RAM in the host buffer. */
    assert_ptr_equal(high, (uint8_t *)guest_mem_ptr(&mem, 0, 1) + GUEST_MMIO_HOLE_START);
    guest_mem_destroy(&mem);
}

static void test_read_write_round_trip(void **state)
{
    struct guest_mem mem;
    assert_int_equal(guest_mem_init(&mem, 4 * MiB, NULL), 0);
    const char text[] = "kiln";
    assert_int_equal(guest_mem_write(&mem, 0x1000, text, sizeof(text)), 0);
    char back[sizeof(text)];
    assert_int_equal(guest_mem_read(&mem, 0x1000, back, sizeof(back)), 0);
    assert_string_equal(back, "kiln");
    assert_int_equal(guest_mem_write(&mem, 4 * MiB - 2, text, sizeof(text)), -EFAULT);
    assert_int_equal(guest_mem_read(&mem, 4 * MiB, back, 1), -EFAULT);
    guest_mem_destroy(&mem);
}

static void test_bad_sizes_rejected(void **state)
{
    struct guest_mem mem;
    struct error err;
    assert_int_equal(guest_mem_init(&mem, 0, &err), -EINVAL);
    assert_int_equal(guest_mem_init(&mem, 4097, &err), -EINVAL);
    assert_string_equal(err.msg, "guest memory: 4097 bytes is not a positive multiple of 4 KiB");
}

static bool page_set(const uint64_t *bits, uint64_t page)
{
    return (bits[page / 64] >> (page % 64)) & 1;
}

/* What a diff snapshot learns of kiln's own writes: every page a write touches, once. */
static void test_written_pages_are_marked_and_taken(void **state)
{
    struct guest_mem mem;
    assert_int_equal(guest_mem_init(&mem, 4 * MiB, NULL), 0);
    uint64_t bits[16] = {0}; /* 1024 pages */
    guest_mem_take_written(&mem, bits);
    assert_int_equal(bits[0], 0);
    uint8_t block[10] = {1};
    assert_int_equal(guest_mem_write(&mem, 0x3ffc, block, sizeof(block)), 0);    /* pages 3, 4 */
    guest_mem_mark_written(&mem, (uint8_t *)mem.mapping + 100 * 4096, 3 * 4096); /* 100-102 */
    guest_mem_mark_written(&mem, (uint8_t *)mem.mapping + 4 * MiB - 1, 4096);    /* clipped: 1023 */
    guest_mem_mark_written(&mem, (uint8_t *)mem.mapping + 4 * MiB, 4096);        /* outside */
    guest_mem_take_written(&mem, bits);
    for (uint64_t page = 0; page < 1024; page++) {
        bool expected = page == 3 || page == 4 || (page >= 100 && page <= 102) || page == 1023;
        assert_true(page_set(bits, page) == expected);
    }
    /* Taking clears the marks: the next snapshot sees only later writes. */
    memset(bits, 0, sizeof(bits));
    guest_mem_take_written(&mem, bits);
    for (unsigned w = 0; w < 16; w++)
        assert_int_equal(bits[w], 0);
    guest_mem_destroy(&mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_vm_single_region),
        cmocka_unit_test(test_large_vm_splits_around_hole),
        cmocka_unit_test(test_read_write_round_trip),
        cmocka_unit_test(test_bad_sizes_rejected),
        cmocka_unit_test(test_written_pages_are_marked_and_taken),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
