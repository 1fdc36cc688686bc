/* Byte-level checks (kiln/util/bytes.h): one copy of the zero scan that every state restore
 * uses on padding and unused array tails. */
#include <stdint.h>

#include "kiln/util/bytes.h"

bool bytes_all_zero(const void *p, size_t len)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < len; i++)
        if (b[i])
            return false;
    return true;
}
