/* error_fmt(): fill a struct error and hand back the errno, so deep code can fail in one line.
 * The message is a single line; main() adds the "kiln: error: " prefix. */
#include <stdarg.h>
#include <stdio.h>

#include "kiln/util/error.h"

int error_fmt(struct error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}
