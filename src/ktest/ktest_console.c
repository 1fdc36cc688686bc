/* The console output of one `kiln test` case as its steps see it: an append-only text with the
 * matching rules of docs/kiln-test.md (expect: from the previous match on; expect-not: each
 * line once), bounded in memory by dropping the oldest output. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/ktest/ktest.h"

static size_t rel(const struct ktest_console *c, size_t abs)
{
    return abs > c->dropped ? abs - c->dropped : 0;
}

/* Keeps the newest half when the text outgrows KTEST_CONSOLE_MAX. */
static void drop_oldest(struct ktest_console *c)
{
    size_t keep = KTEST_CONSOLE_MAX / 2;
    size_t cut = c->len - keep;
    memmove(c->buf, c->buf + cut, keep + 1);
    c->len = keep;
    c->dropped += cut;
}

int ktest_console_append(struct ktest_console *c, const char *data, size_t n)
{
    if (c->len + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < c->len + n + 1)
            cap *= 2;
        char *buf = realloc(c->buf, cap);
        if (!buf)
            return -ENOMEM;
        c->buf = buf;
        c->cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        if (data[i] == '\r')
            continue;
        c->buf[c->len++] = data[i] ? data[i] : ' ';
    }
    c->buf[c->len] = '\0';
    if (c->len > KTEST_CONSOLE_MAX)
        drop_oldest(c);
    return 0;
}

/* The start of the line holding offset (relative). */
static size_t line_start(const struct ktest_console *c, size_t offset)
{
    while (offset > 0 && c->buf[offset - 1] != '\n')
        offset--;
    return offset;
}

static bool match_range(const struct ktest_console *c, const regex_t *re, size_t from, size_t to,
                        regmatch_t *m)
{
    m->rm_so = (regoff_t)from;
    m->rm_eo = (regoff_t)to;
    int flags = REG_STARTEND;
    if (from > 0 && c->buf[from - 1] != '\n')
        flags |= REG_NOTBOL;
    return regexec(re, c->buf, 1, m, flags) == 0;
}

bool ktest_console_expect(struct ktest_console *c, const regex_t *re, bool multiline)
{
    if (!c->buf)
        return false;
    size_t from = rel(c, c->expect_from);
    /* A pattern without a newline matches within one line: look again only from the line the
     * previous look ended in. */
    size_t start = from;
    if (!multiline) {
        size_t scanned = line_start(c, rel(c, c->expect_scanned));
        if (scanned > start)
            start = scanned;
    }
    regmatch_t m;
    c->expect_scanned = c->dropped + c->len;
    if (!match_range(c, re, start, c->len, &m))
        return false;
    c->expect_from = c->dropped + (size_t)m.rm_eo;
    c->expect_scanned = c->expect_from;
    return true;
}

int ktest_console_forbidden(struct ktest_console *c, const struct ktest_step *steps,
                            unsigned nsteps, bool final)
{
    if (!c->buf)
        return -1;
    size_t at = rel(c, c->lines_checked);
    while (at < c->len) {
        const char *nl = memchr(c->buf + at, '\n', c->len - at);
        if (!nl && !final)
            break;
        size_t end = nl ? (size_t)(nl - c->buf) : c->len;
        for (unsigned i = 0; i < nsteps; i++) {
            regmatch_t m;
            if (steps[i].kind == KTEST_EXPECT_NOT && steps[i].regex_ok &&
                match_range(c, &steps[i].regex, at, end, &m)) {
                c->lines_checked = c->dropped + (nl ? end + 1 : end);
                return (int)i;
            }
        }
        at = nl ? end + 1 : end;
        c->lines_checked = c->dropped + at;
    }
    return -1;
}

const char *ktest_console_tail(const struct ktest_console *c, size_t max)
{
    if (!c->buf)
        return "";
    if (c->len <= max)
        return c->buf;
    const char *start = c->buf + c->len - max;
    const char *nl = memchr(start, '\n', max);
    return nl && nl + 1 < c->buf + c->len ? nl + 1 : start;
}

void ktest_console_free(struct ktest_console *c)
{
    free(c->buf);
    memset(c, 0, sizeof(*c));
}
