/* Scatter-gather copies: walks an iovec array from a byte offset, one memcpy per segment, so
 * no caller re-implements the skip-then-copy loop (and its off-by-ones). */
#include <stdint.h>
#include <string.h>

#include "kiln/util/iov.h"

/* Index of the segment holding byte *offset, with *offset made relative to it; n if none. */
static unsigned locate(const struct iovec *iov, unsigned n, size_t *offset)
{
    unsigned i = 0;
    while (i < n && *offset >= iov[i].iov_len) {
        *offset -= iov[i].iov_len;
        i++;
    }
    return i;
}

size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t offset, const void *src, size_t len)
{
    size_t done = 0;
    for (unsigned i = locate(iov, n, &offset); i < n && done < len; i++, offset = 0) {
        size_t k = iov[i].iov_len - offset;
        if (k > len - done)
            k = len - done;
        memcpy((uint8_t *)iov[i].iov_base + offset, (const uint8_t *)src + done, k);
        done += k;
    }
    return done;
}

size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t offset, void *dst, size_t len)
{
    size_t done = 0;
    for (unsigned i = locate(iov, n, &offset); i < n && done < len; i++, offset = 0) {
        size_t k = iov[i].iov_len - offset;
        if (k > len - done)
            k = len - done;
        memcpy((uint8_t *)dst + done, (const uint8_t *)iov[i].iov_base + offset, k);
        done += k;
    }
    return done;
}

void *iov_byte(const struct iovec *iov, unsigned n, size_t offset)
{
    unsigned i = locate(iov, n, &offset);
    return i < n ? (uint8_t *)iov[i].iov_base + offset : NULL;
}
