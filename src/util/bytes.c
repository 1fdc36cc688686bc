/* Byte-level helpers (kiln/util/bytes.h): one copy of the zero scan that every state restore
 * uses on padding and unused array tails, and of a hex digit's value. */
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

int bytes_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
