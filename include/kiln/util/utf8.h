/* UTF-8 validation shared by the YAML loaders (which refuse non-UTF-8 files) and the JUnit
 * writer (which escapes what XML cannot hold). */
#ifndef KILN_UTF8_H
#define KILN_UTF8_H

#include <stddef.h>

/* Length of the UTF-8 sequence at p (n bytes left), or 0 if it is not one: no overlong forms,
 * no surrogates, nothing above U+10FFFF. */
size_t utf8_sequence_length(const unsigned char *p, size_t n);

#endif
