/* Adding options to a kernel command line the way the kernel reads it: whole words, quoted
 * values, '-' and '_' alike in names, and nothing inserted into init's arguments after "--". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/boot/cmdline.h"

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
    if (!buf)
        return;
    size_t used = strlen(buf);
    snprintf(buf + used, size - used, "%s%.*s", used ? " " : "", (int)len, text);
}

bool cmdline_sets(const char *cmdline, const char *option)
{
    return user_sets(cmdline, kernel_part_length(cmdline), option);
}

int cmdline_add_options(const char *user_cmdline, const char *const *options, size_t n,
                        bool unless_set, char **out, struct cmdline_note *note)
{
    if (note)
        memset(note, 0, sizeof(*note));
    if (!user_cmdline)
        user_cmdline = "";
    size_t kernel_end = kernel_part_length(user_cmdline);
    size_t added_len = 0;
    for (size_t i = 0; i < n; i++)
        added_len += strlen(options[i]) + 1;
    char *added = calloc(1, added_len + 1);
    if (!added)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *opt = options[i];
        if (unless_set && user_sets(user_cmdline, kernel_end, opt)) {
            if (note)
                note_append(note->kept, sizeof(note->kept), opt, name_length(opt, strlen(opt)));
            continue;
        }
        note_append(added, added_len + 1, opt, strlen(opt));
    }
    if (note)
        snprintf(note->added, sizeof(note->added), "%s", added);
    if (!added[0]) {
        free(added);
        *out = strdup(user_cmdline); /* nothing to add: the user's line, byte for byte */
        return *out ? 0 : -ENOMEM;
    }
    /* user's kernel options (trailing blanks dropped), ours, then " -- init args" if any */
    size_t head = kernel_end;
    while (head > 0 && is_space(user_cmdline[head - 1]))
        head--;
    const char *tail = user_cmdline + kernel_end;
    size_t size = head + 1 + strlen(added) + 1 + strlen(tail) + 1;
    *out = malloc(size);
    if (*out) {
        const char *sep1 = head ? " " : "";
        const char *sep2 = tail[0] ? " " : "";
        snprintf(*out, size, "%.*s%s%s%s%s", (int)head, user_cmdline, sep1, added, sep2, tail);
    }
    free(added);
    return *out ? 0 : -ENOMEM;
}
