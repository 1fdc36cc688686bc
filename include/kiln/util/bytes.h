/* Small byte-level checks shared by the snapshot restores: padding and unused bytes of a saved
 * state must be zero, or the state is refused. */
#ifndef KILN_UTIL_BYTES_H
#define KILN_UTIL_BYTES_H

#include <stdbool.h>
#include <stddef.h>

/* True if all len bytes at p are zero (len 0: true). */
bool bytes_all_zero(const void *p, size_t len);

#endif
