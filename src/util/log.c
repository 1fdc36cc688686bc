/* Levelled logging: "kiln: LEVEL: message" lines on stderr (or a test's stream).
 * Each line is written with one write so lines from vCPU threads do not interleave. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kiln/util/log.h"

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* How long a line waits for room on a stderr nobody reads before it is dropped. */
#define LOG_STALL_MS 250

/* `kiln run` makes stderr its own non-blocking description of a pipe or terminal (main.c), so
 * a reader that stopped reading (kiln run 2>&1 | less) cannot stop the loop or kiln's exit:
 * a line that finds no room waits LOG_STALL_MS once, then is dropped. */
static void write_line(FILE *out, const char *text, size_t len)
{
    int fd = out == stderr ? fileno(out) : -1;
    if (fd < 0) {
        fputs(text, out);
        return;
    }
    bool waited = false;
    while (len > 0) {
        ssize_t n = write(fd, text, len);
        if (n > 0) {
            text += n;
            len -= (size_t)n;
        } else if (n < 0 && errno == EAGAIN && !waited) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            poll(&pfd, 1, LOG_STALL_MS);
            waited = true;
        } else if (!(n < 0 && errno == EINTR)) {
            return;
        }
    }
}

void log_init(struct log *log, enum log_level level)
{
    log->level = level;
    log->out = stderr;
}

bool log_enabled(const struct log *log, enum log_level level)
{
    return log && level <= log->level;
}

void log_msg(const struct log *log, enum log_level level, const char *fmt, ...)
{
    if (!log_enabled(log, level))
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    char text[sizeof(line) + 32];
    int len = snprintf(text, sizeof(text), "kiln: %s: %s\n", level_names[level], line);
    write_line(log->out ? log->out : stderr, text,
               (size_t)len < sizeof(text) ? (size_t)len : sizeof(text) - 1);
}

int log_level_parse(const char *text, enum log_level *level)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(text, level_names[i]) == 0) {
            *level = (enum log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *log_level_name(enum log_level level)
{
    return level <= LOG_DEBUG ? level_names[level] : "?";
}
