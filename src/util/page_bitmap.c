/* Page bitmaps (kiln/util/page_bitmap.h): a memory slot's dirty log OR-ed into the bitmap of
 * the whole RAM file at the slot's first page, and counting the pages set. */
#include "kiln/util/page_bitmap.h"

static uint64_t bits_below(uint64_t n) /* n < 64 */
{
    return n == 0 ? 0 : ~0ull >> (64 - n);
}

void page_bitmap_or_at(uint64_t *dst, uint64_t first, const uint64_t *src, uint64_t pages)
{
    unsigned shift = (unsigned)(first % 64);
    uint64_t *out = dst + first / 64;
    for (uint64_t w = 0; w < page_bitmap_words(pages); w++) {
        uint64_t word = src[w];
        uint64_t left = pages - w * 64;
        if (left < 64)
            word &= bits_below(left);
        if (word == 0)
            continue;
        out[w] |= word << shift;
        /* The bits shifted out at the top belong to the next word of dst. */
        if (shift != 0 && (word >> (64 - shift)) != 0)
            out[w + 1] |= word >> (64 - shift);
    }
}

uint64_t page_bitmap_count(const uint64_t *bits, uint64_t pages)
{
    uint64_t count = 0;
    for (uint64_t w = 0; w < page_bitmap_words(pages); w++) {
        uint64_t word = bits[w];
        uint64_t left = pages - w * 64;
        if (left < 64)
            word &= bits_below(left);
        count += (uint64_t)__builtin_popcountll(word);
    }
    return count;
}

void page_bitmap_set_all(uint64_t *bits, uint64_t pages)
{
    for (uint64_t w = 0; w < pages / 64; w++)
        bits[w] = ~0ull;
    if (pages % 64)
        bits[pages / 64] = bits_below(pages % 64);
}
