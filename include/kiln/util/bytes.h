/* Small byte-level helpers: the snapshot restores' zero check (padding and unused bytes of a
 * saved state must be zero) and one hex digit's value (MACs, migration keys). */
#ifndef KILN_UTIL_BYTES_H
#define KILN_UTIL_BYTES_H

#include <stdbool.h>
#include <stddef.h>

/* True if all len bytes at p are zero (len 0: true). */
bool bytes_all_zero(const void *p, size_t len);
/* The value of hex digit c (either case), or -1. */
int bytes_hex_digit(char c);

#endif
