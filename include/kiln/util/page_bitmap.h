/* Bitmaps of guest pages as KVM_GET_DIRTY_LOG lays them out (bit i of word i / 64 is page i):
 * sizing one, OR-ing one memory slot's bits into a bitmap of all of RAM, counting bits. */
#ifndef KILN_UTIL_PAGE_BITMAP_H
#define KILN_UTIL_PAGE_BITMAP_H

#include <stdbool.h>
#include <stdint.h>

/* How many 64-bit words hold one bit for each of pages pages. */
static inline uint64_t page_bitmap_words(uint64_t pages)
{
    return (pages + 63) / 64;
}

/* dst |= src shifted to start at page first: bit i of src (i < pages) sets bit first + i of
 * dst. src's bits at or past pages are ignored, so a slot's log rounded up to whole words
 * never spills into the next slot's pages. */
void page_bitmap_or_at(uint64_t *dst, uint64_t first, const uint64_t *src, uint64_t pages);

/* The bits set among the first pages bits. */
uint64_t page_bitmap_count(const uint64_t *bits, uint64_t pages);

static inline bool page_bitmap_test(const uint64_t *bits, uint64_t page)
{
    return (bits[page / 64] >> (page % 64)) & 1;
}

/* Sets the first pages bits and clears the rest of the last word. */
void page_bitmap_set_all(uint64_t *bits, uint64_t pages);

#endif
