/* Guest kit command line: key=value lookup in the string the VMM passed in the PVH start
 * info, parsed in place (no copies, no allocation). */
#include "guest.h"

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n';
}

size_t cmdline_value_len(const char *value)
{
    size_t n = 0;
    while (value[n] && !is_space(value[n]))
        n++;
    return n;
}

const char *cmdline_get(const char *key)
{
    size_t key_len = strlen(key);
    const char *p = cmdline_all();
    while (*p) {
        while (is_space(*p))
            p++;
        const char *word = p;
        size_t word_len = cmdline_value_len(word);
        p += word_len;
        if (word_len < key_len || strncmp(word, key, key_len) != 0)
            continue;
        if (word_len == key_len)
            return word + key_len; /* bare "key": points at the separator, an empty value */
        if (word[key_len] == '=')
            return word + key_len + 1;
    }
    return NULL;
}

static int digit_value(char c, unsigned base)
{
    unsigned d;
    if (c >= '0' && c <= '9')
        d = (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f')
        d = (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
        d = (unsigned)(c - 'A' + 10);
    else
        return -1;
    return d < base ? (int)d : -1;
}

int cmdline_get_u32(const char *key, uint32_t *out)
{
    const char *value = cmdline_get(key);
    if (!value)
        return -1;
    size_t len = cmdline_value_len(value);
    unsigned base = 10;
    if (len > 2 && value[0] == '0' && (value[1] == 'x' || value[1] == 'X')) {
        base = 16;
        value += 2;
        len -= 2;
    }
    if (len == 0)
        return -1;
    uint64_t result = 0;
    for (size_t i = 0; i < len; i++) {
        int d = digit_value(value[i], base);
        if (d < 0)
            return -1;
        result = result * base + (unsigned)d;
        if (result > 0xffffffffULL)
            return -1;
    }
    *out = (uint32_t)result;
    return 0;
}
