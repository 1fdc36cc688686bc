/* One-line error messages carried back up the call stack.
 * Deep code fills a struct error and returns a negative errno; only main() prints and exits. */
#ifndef KILN_ERROR_H
#define KILN_ERROR_H

struct error {
    char msg[512];
};

/* Formats the message into err (if err is non-NULL) and returns code, so callers can write
 * `return error_fmt(err, -EINVAL, "...")`. */
int error_fmt(struct error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
