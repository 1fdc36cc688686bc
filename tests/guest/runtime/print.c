/* Guest kit printf: the small subset test guests need, formatted straight to the serial
 * port with no buffer to size or overflow. */
#include "guest.h"

struct spec {
    int is_long;
    int zero_pad;
    int left;
    int width;
};

static int emit_padding(int count, char pad)
{
    for (int i = 0; i < count; i++)
        serial_putc(pad);
    return count > 0 ? count : 0;
}

static int emit_unsigned(uint64_t value, unsigned base, int negative, const struct spec *spec)
{
    char digits[24];
    int n = 0;
    do {
        unsigned d = (unsigned)(value % base);
        digits[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        value /= base;
    } while (value != 0);
    int len = n + negative;
    int written = 0;
    if (spec->left) {
        if (negative)
            serial_putc('-');
        while (n > 0)
            serial_putc(digits[--n]);
        return len + emit_padding(spec->width - len, ' ');
    }
    if (spec->zero_pad) {
        if (negative)
            serial_putc('-');
        written += emit_padding(spec->width - len, '0');
    } else {
        written += emit_padding(spec->width - len, ' ');
        if (negative)
            serial_putc('-');
    }
    while (n > 0)
        serial_putc(digits[--n]);
    return written + len;
}

static int emit_signed(int64_t value, const struct spec *spec)
{
    /* Negating through uint64_t keeps INT64_MIN defined. */
    uint64_t magnitude = value < 0 ? 0 - (uint64_t)value : (uint64_t)value;
    return emit_unsigned(magnitude, 10, value < 0, spec);
}

static int emit_string(const char *s, const struct spec *spec)
{
    if (!s)
        s = "(null)";
    int len = (int)strlen(s);
    int written = spec->left ? 0 : emit_padding(spec->width - len, ' ');
    print(s);
    if (spec->left)
        written += emit_padding(spec->width - len, ' ');
    return written + len;
}

/* Reads flags, width and length; returns the conversion character and advances *fmt. */
static char parse_spec(const char **fmt, struct spec *spec)
{
    const char *p = *fmt;
    spec->zero_pad = 0;
    spec->width = 0;
    spec->is_long = 0;
    spec->left = 0;
    for (;; p++) {
        if (*p == '0')
            spec->zero_pad = 1;
        else if (*p == '-')
            spec->left = 1;
        else
            break;
    }
    while (*p >= '0' && *p <= '9')
        spec->width = spec->width * 10 + (*p++ - '0');
    while (*p == 'l') {
        spec->is_long = 1;
        p++;
    }
    if (*p == 'z') {
        spec->is_long = 1;
        p++;
    }
    *fmt = *p ? p + 1 : p;
    return *p;
}

int vprintf(const char *fmt, va_list ap)
{
    int written = 0;
    while (*fmt) {
        if (*fmt != '%') {
            serial_putc(*fmt++);
            written++;
            continue;
        }
        fmt++;
        struct spec spec;
        char conv = parse_spec(&fmt, &spec);
        switch (conv) {
        case 'd':
        case 'i':
            written += emit_signed(spec.is_long ? va_arg(ap, long) : va_arg(ap, int), &spec);
            break;
        case 'u':
            written += emit_unsigned(
                spec.is_long ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int), 10, 0, &spec);
            break;
        case 'x':
            written += emit_unsigned(
                spec.is_long ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int), 16, 0, &spec);
            break;
        case 'p':
            print("0x");
            written += 2 + emit_unsigned((uintptr_t)va_arg(ap, void *), 16, 0, &spec);
            break;
        case 's':
            written += emit_string(va_arg(ap, const char *), &spec);
            break;
        case 'c':
            serial_putc((char)va_arg(ap, int));
            written++;
            break;
        case '%':
            serial_putc('%');
            written++;
            break;
        case '\0':
            break;
        default:
            /* Unknown conversions are echoed so a typo shows in the log. */
            serial_putc('%');
            serial_putc(conv);
            written += 2;
            break;
        }
    }
    return written;
}

int printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int written = vprintf(fmt, ap);
    va_end(ap);
    return written;
}
