/* Levelled logging: "kiln: LEVEL: message" lines on stderr (or a test's stream).
 * Each line is written with one fprintf so lines from vCPU threads do not interleave. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kiln/util/log.h"

static const char *const level_names[] = {"error", "warn", "info", "debug"};

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
    fprintf(log->out ? log->out : stderr, "kiln: %s: %s\n", level_names[level], line);
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
