/* The jail's settings (--jail DIR, --uid U, --gid G): their setters and getters, which the
 * settings table uses for the flags, the YAML keys and `kiln config` alike. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/config/config_settings.h"

#define ID_EXPECTED "a number from 1 to 4294967294"

int config_set_jail(struct vm_config *cfg, const char *label, const char *text, struct error *err)
{
    if (!*text)
        return error_fmt(err, -EINVAL, "%s: empty path (expected the jail's folder)", label);
    char *copy = strdup(text);
    if (!copy)
        return error_fmt(err, -ENOMEM, "out of memory");
    free(cfg->jail_dir);
    cfg->jail_dir = copy;
    return 0;
}

/* Digits only, 1 to 2^32 - 2: 0 would keep root's powers, and (uid_t)-1 means "unchanged" to
 * setuid. */
static int parse_id(const char *label, const char *text, int64_t *id, struct error *err)
{
    size_t len = strlen(text);
    int64_t n = 0;
    bool digits = len > 0 && len <= 10 && strspn(text, "0123456789") == len;
    for (size_t i = 0; digits && i < len; i++)
        n = n * 10 + (text[i] - '0');
    if (!digits || n < 1 || n > 4294967294LL) {
        char quoted[CONFIG_QUOTE_SIZE];
        return error_fmt(err, -EINVAL, "%s: '%s' cannot be used (expected " ID_EXPECTED ")", label,
                         config_quote(text, quoted, sizeof(quoted)));
    }
    *id = n;
    return 0;
}

int config_set_jail_uid(struct vm_config *cfg, const char *label, const char *text,
                        struct error *err)
{
    return parse_id(label, text, &cfg->jail_uid, err);
}

int config_set_jail_gid(struct vm_config *cfg, const char *label, const char *text,
                        struct error *err)
{
    return parse_id(label, text, &cfg->jail_gid, err);
}

int config_get_jail(const struct vm_config *cfg, char **text)
{
    return config_text(cfg->jail_dir, text);
}

static int get_id(int64_t id, char **text)
{
    char digits[24];
    snprintf(digits, sizeof(digits), "%lld", (long long)id);
    return config_text(id >= 0 ? digits : NULL, text);
}

int config_get_jail_uid(const struct vm_config *cfg, char **text)
{
    return get_id(cfg->jail_uid, text);
}

int config_get_jail_gid(const struct vm_config *cfg, char **text)
{
    return get_id(cfg->jail_gid, text);
}
