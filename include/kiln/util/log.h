/* Levelled logging to stderr. The level lives in a struct log owned by whoever runs
 * (struct vm for a running VM), never in a process-wide variable. */
#ifndef KILN_LOG_H
#define KILN_LOG_H

#include <stdbool.h>
#include <stdio.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

struct log {
    enum log_level level;
    FILE *out; /* stderr unless a test redirects it */
};

void log_init(struct log *log, enum log_level level);
void log_msg(const struct log *log, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool log_enabled(const struct log *log, enum log_level level);

/* Parses "error", "warn", "info" or "debug". Returns 0, or -EINVAL for anything else. */
int log_level_parse(const char *text, enum log_level *level);
const char *log_level_name(enum log_level level);

#define log_error(log, ...) log_msg((log), LOG_ERROR, __VA_ARGS__)
#define log_warn(log, ...)  log_msg((log), LOG_WARN, __VA_ARGS__)
#define log_info(log, ...)  log_msg((log), LOG_INFO, __VA_ARGS__)
#define log_debug(log, ...) log_msg((log), LOG_DEBUG, __VA_ARGS__)

#endif
