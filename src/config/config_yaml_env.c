/* The text side of YAML values: ${VAR} expansion from the environment, paths relative to the
 * YAML file's folder, and the absolute paths `kiln config` writes. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln/config/config_yaml.h"

struct text_buf {
    char *data;
    size_t len, cap;
};

static int append(struct text_buf *b, const char *text, size_t len)
{
    if (b->len + len > CONFIG_YAML_MAX_VALUE)
        return -E2BIG;
    if (b->len + len + 1 > b->cap) {
        size_t cap = (b->len + len + 1) * 2;
        char *data = realloc(b->data, cap);
        if (!data)
            return -ENOMEM;
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, text, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

static size_t name_length(const char *p)
{
    if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '_'))
        return 0;
    size_t n = 1;
    while ((p[n] >= 'A' && p[n] <= 'Z') || (p[n] >= 'a' && p[n] <= 'z') ||
           (p[n] >= '0' && p[n] <= '9') || p[n] == '_')
        n++;
    return n;
}

/* One "${...}" at p (p points at '$'): appends its value and returns its length in the text,
 * or a negative errno with err filled. */
static long expand_one(const char *label, const char *p, struct text_buf *b, struct error *err)
{
    char quoted[CONFIG_QUOTE_SIZE];
    const char *close = strchr(p + 2, '}');
    if (!close)
        return error_fmt(err, -EINVAL, "%s: '%s' has no closing '}' (expected ${NAME})", label,
                         config_quote(p, quoted, sizeof(quoted)));
    size_t len = (size_t)(close - p) + 1;
    size_t n = name_length(p + 2);
    const char *after = p + 2 + n;
    bool has_default = after[0] == ':' && after[1] == '-';
    if (n == 0 || (after != close && !has_default)) {
        char ref[CONFIG_QUOTE_SIZE];
        snprintf(ref, sizeof(ref), "%.*s", (int)(len < sizeof(ref) ? len : sizeof(ref) - 1), p);
        return error_fmt(err, -EINVAL,
                         "%s: '%s' is not a variable reference (expected ${NAME} or "
                         "${NAME:-DEFAULT}, NAME of letters, digits and '_')",
                         label, config_quote(ref, quoted, sizeof(quoted)));
    }
    char name[256];
    if (n >= sizeof(name))
        return error_fmt(err, -EINVAL, "%s: a variable name of %zu bytes (expected at most %zu)",
                         label, n, sizeof(name) - 1);
    memcpy(name, p + 2, n);
    name[n] = '\0';
    const char *value = getenv(name);
    int r;
    if (has_default && (!value || !*value))
        r = append(b, after + 2, (size_t)(close - after - 2));
    else if (!value)
        return error_fmt(err, -EINVAL,
                         "%s: environment variable %s is not set (expected it set, or "
                         "${%s:-DEFAULT})",
                         label, name, name);
    else
        r = append(b, value, strlen(value));
    return r < 0 ? r : (long)len;
}

int config_yaml_expand(const char *label, const char *text, char **out, struct error *err)
{
    struct text_buf b = {0};
    int r = append(&b, "", 0);
    for (const char *p = text; r == 0 && *p;) {
        const char *dollar = strchr(p, '$');
        size_t plain = dollar ? (size_t)(dollar - p) : strlen(p);
        r = append(&b, p, plain);
        p += plain;
        if (r < 0 || !dollar)
            break;
        if (p[1] == '$') { /* "$$": one literal '$' */
            r = append(&b, "$", 1);
            p += 2;
        } else if (p[1] == '{') {
            long used = expand_one(label, p, &b, err);
            if (used == -EINVAL) { /* err says which reference */
                free(b.data);
                return -EINVAL;
            }
            r = used < 0 ? (int)used : 0;
            p += used < 0 ? 0 : used;
        } else {
            r = append(&b, "$", 1);
            p++;
        }
    }
    if (r == -E2BIG)
        r = error_fmt(err, -EINVAL,
                      "%s: more than %d bytes after expanding ${...} (expected "
                      "a shorter value)",
                      label, CONFIG_YAML_MAX_VALUE);
    else if (r < 0)
        r = error_fmt(err, r, "out of memory");
    if (r < 0) {
        free(b.data);
        return r;
    }
    *out = b.data;
    return 0;
}

char *config_yaml_join(const char *dir, const char *path)
{
    if (!dir || path[0] == '/')
        return strdup(path);
    char *joined = NULL;
    if (asprintf(&joined, "%s/%s", dir, path) < 0)
        return NULL;
    return joined;
}

char *config_absolute_path(const char *path)
{
    char *real = realpath(path, NULL);
    if (real)
        return real;
    /* Not there (yet): a console file, or a disk image made later. */
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir)
        return NULL;
    char *real_dir = realpath(dir, NULL);
    free(dir);
    const char *base = slash ? slash + 1 : path;
    char *joined = NULL;
    if (real_dir && *base) {
        joined = config_yaml_join(strcmp(real_dir, "/") == 0 ? "" : real_dir, base);
        free(real_dir);
        return joined;
    }
    free(real_dir);
    if (path[0] == '/')
        return strdup(path);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof(cwd)))
        return strdup(path);
    return config_yaml_join(cwd, path);
}
