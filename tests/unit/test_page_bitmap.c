/* Unit tests for page bitmaps: a slot's dirty log OR-ed into the whole RAM's bitmap at word
 * and non-word offsets, bits past the slot's last page ignored, and counting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kiln/util/page_bitmap.h"

static void test_words(void **state)
{
    (void)state;
    assert_int_equal(page_bitmap_words(0), 0);
    assert_int_equal(page_bitmap_words(1), 1);
    assert_int_equal(page_bitmap_words(64), 1);
    assert_int_equal(page_bitmap_words(65), 2);
}

/* Two slots as kiln lays RAM out: the high slot's pages follow the low slot's in the file. */
static void test_or_at_word_boundary(void **state)
{
    (void)state;
    uint64_t all[4] = {0};
    uint64_t low[2] = {0x1, 0x8000000000000000ull}; /* pages 0 and 127 */
    uint64_t high[2] = {0x3, 0x1};                  /* pages 0, 1 and 64 of the slot */
    page_bitmap_or_at(all, 0, low, 128);
    page_bitmap_or_at(all, 128, high, 128);
    assert_int_equal(all[0], 0x1);
    assert_int_equal(all[1], 0x8000000000000000ull);
    assert_int_equal(all[2], 0x3);
    assert_int_equal(all[3], 0x1);
    assert_int_equal(page_bitmap_count(all, 256), 5);
}

static void test_or_at_unaligned_offset(void **state)
{
    (void)state;
    uint64_t all[3] = {0};
    uint64_t slot[2] = {0x8000000000000001ull, 0x1}; /* pages 0, 63 and 64 */
    page_bitmap_or_at(all, 10, slot, 65);
    assert_int_equal(all[0], 1ull << 10);
    assert_int_equal(all[1], (1ull << 9) | (1ull << 10)); /* 73 and 74 */
    assert_int_equal(all[2], 0);
    assert_int_equal(page_bitmap_count(all, 192), 3);
}

/* KVM rounds a slot's log up to whole words: bits past its last page must not reach the
 * next slot's pages. */
static void test_bits_past_the_slot_ignored(void **state)
{
    (void)state;
    uint64_t all[2] = {0};
    uint64_t slot[1] = {~0ull};
    page_bitmap_or_at(all, 0, slot, 5);
    assert_int_equal(all[0], 0x1f);
    assert_int_equal(all[1], 0);
    page_bitmap_or_at(all, 60, slot, 5); /* 60..64, across a word */
    assert_int_equal(all[0], 0xf00000000000001full);
    assert_int_equal(all[1], 0x1);
    assert_int_equal(page_bitmap_count(all, 128), 10);
    assert_int_equal(page_bitmap_count(all, 62), 7); /* only the first 62 bits count */
}

static void test_or_keeps_existing_bits(void **state)
{
    (void)state;
    uint64_t all[1] = {0x10};
    uint64_t slot[1] = {0x1};
    page_bitmap_or_at(all, 0, slot, 64);
    assert_int_equal(all[0], 0x11);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_words),
        cmocka_unit_test(test_or_at_word_boundary),
        cmocka_unit_test(test_or_at_unaligned_offset),
        cmocka_unit_test(test_bits_past_the_slot_ignored),
        cmocka_unit_test(test_or_keeps_existing_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
