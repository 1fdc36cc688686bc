/* Host-compat kernel command line: the options that keep a Linux guest off what an emulated
 * ring 0 cannot run, merged into the user's command line without overriding anything in it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/hostcompat.h"

/* Why each option (docs/host-compat.md has the long form):
 * - noxsave: the xsave family and xgetbv are not emulated; the kernel falls back to fxsave.
 * - clearcpuid=: leaf 1/7 features KVM_SET_CPUID2 cannot hide here and whose instructions the
 *   emulator lacks (cmpxchg16b, popcnt, SSE3+ ALU, crypto, rdtscp/rdpid, invpcid, cache
 *   flushes, SMAP's stac/clac in every uaccess, fast-string paths, BMI2/ADX). The kernel keeps
 *   only 127 characters of its value, so the list must stay short (a unit test checks).
 * - lpj=, tsc=reliable, no_timer_check, nowatchdog: skip delay-loop calibration, TSC and timer
 *   checks and lockup detectors, which crawl or misfire at ~1000x slower ring-0 speed. */
#define OPT_NOXSAVE "noxsave"
#define OPT_CLEARCPUID                                                                             \
    "clearcpuid=cx16,popcnt,ssse3,sse4_1,sse4_2,pclmulqdq,aes,rdtscp,rdpid,invpcid,clflushopt,"    \
    "clwb,smap,erms,fsrm,bmi2,adx"
#define OPT_LPJ            "lpj=5000000"
#define OPT_TSC            "tsc=reliable"
#define OPT_NO_TIMER_CHECK "no_timer_check"
#define OPT_NOWATCHDOG     "nowatchdog"

static const char *const extra_options[] = {
    OPT_NOXSAVE, OPT_CLEARCPUID, OPT_LPJ, OPT_TSC, OPT_NO_TIMER_CHECK, OPT_NOWATCHDOG,
};
#define EXTRA_COUNT (sizeof(extra_options) / sizeof(extra_options[0]))

static const char extra_joined[] = OPT_NOXSAVE " " OPT_CLEARCPUID " " OPT_LPJ " " OPT_TSC
                                               " " OPT_NO_TIMER_CHECK " " OPT_NOWATCHDOG;

const char *hostcompat_cmdline_extra(void)
{
    return extra_joined;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Length of the word starting at s: up to unquoted whitespace. The kernel lets a double quote
 * protect spaces inside a value (param="a b"), so "lpj=1" inside quotes is not an option. */
static size_t word_length(const char *s)
{
    bool quoted = false;
    size_t n = 0;
    for (; s[n] && (quoted || !is_space(s[n])); n++) {
        if (s[n] == '"')
            quoted = !quoted;
    }
    return n;
}

/* Length of an option's name: up to '=' or the end of the word. */
static size_t name_length(const char *word, size_t len)
{
    const char *eq = memchr(word, '=', len);
    return eq ? (size_t)(eq - word) : len;
}

/* Option names compare with '-' and '_' alike, as the kernel's parameq() does. */
static bool same_name(const char *a, size_t la, const char *b, size_t lb)
{
    if (la != lb)
        return false;
    for (size_t i = 0; i < la; i++) {
        char x = a[i] == '-' ? '_' : a[i], y = b[i] == '-' ? '_' : b[i];
        if (x != y)
            return false;
    }
    return true;
}

/* Offset of a "--" word (what follows is for init, not the kernel), else strlen(cmdline). */
static size_t kernel_part_length(const char *cmdline)
{
    size_t i = 0;
    while (cmdline[i]) {
        if (is_space(cmdline[i])) {
            i++;
            continue;
        }
        size_t n = word_length(cmdline + i);
        if (n == 2 && cmdline[i] == '-' && cmdline[i + 1] == '-')
            return i;
        i += n;
    }
    return i;
}

/* Whether the kernel part of cmdline (its first `end` bytes) sets the option named like opt. */
static bool user_sets(const char *cmdline, size_t end, const char *opt)
{
    size_t opt_name = name_length(opt, strlen(opt));
    for (size_t i = 0; i < end;) {
        if (is_space(cmdline[i])) {
            i++;
            continue;
        }
        size_t n = word_length(cmdline + i);
        if (same_name(cmdline + i, name_length(cmdline + i, n), opt, opt_name))
            return true;
        i += n;
    }
    return false;
}

static void note_append(char *buf, size_t size, const char *text, size_t len)
{
    size_t used = strlen(buf);
    snprintf(buf + used, size - used, "%s%.*s", used ? " " : "", (int)len, text);
}

int hostcompat_cmdline_merge(const char *user_cmdline, char **out,
                             struct hostcompat_cmdline_note *note)
{
    struct hostcompat_cmdline_note local;
    if (!note)
        note = &local;
    memset(note, 0, sizeof(*note));
    if (!user_cmdline)
        user_cmdline = "";
    size_t kernel_end = kernel_part_length(user_cmdline);
    for (size_t i = 0; i < EXTRA_COUNT; i++) {
        const char *opt = extra_options[i];
        if (user_sets(user_cmdline, kernel_end, opt))
            note_append(note->kept, sizeof(note->kept), opt, name_length(opt, strlen(opt)));
        else
            note_append(note->added, sizeof(note->added), opt, strlen(opt));
    }

    if (!note->added[0]) {
        *out = strdup(user_cmdline); /* nothing to add: the user's line, byte for byte */
        return *out ? 0 : -ENOMEM;
    }
    /* user's kernel options (trailing blanks dropped), ours, then " -- init args" if any */
    size_t head = kernel_end;
    while (head > 0 && is_space(user_cmdline[head - 1]))
        head--;
    const char *tail = user_cmdline + kernel_end;
    size_t size = head + 1 + strlen(note->added) + 1 + strlen(tail) + 1;
    *out = malloc(size);
    if (!*out)
        return -ENOMEM;
    const char *sep1 = head ? " " : "";
    const char *sep2 = tail[0] ? " " : "";
    snprintf(*out, size, "%.*s%s%s%s%s", (int)head, user_cmdline, sep1, note->added, sep2, tail);
    return 0;
}

int hostcompat_cmdline_append(const char *user_cmdline, char **out)
{
    return hostcompat_cmdline_merge(user_cmdline, out, NULL);
}
