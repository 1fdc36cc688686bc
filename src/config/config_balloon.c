/* The --balloon setting (and the YAML balloon: key, the same string): the balloon's first size
 * and its options, parsed through the same option table as a --disk value. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/config/config_settings.h"

#define SIZE_EXPECTED  "a whole number of MiB such as 0 or 128M, at most the VM's memory"
#define ONOFF_EXPECTED "on or off"
#define STATS_EXPECTED                                                                             \
    "a number of seconds from 0 (no statistics) to " CONFIG_STRINGIFY(CONFIG_MAX_BALLOON_STATS)

static int set_size(void *device, const char *subject, const char *text, struct error *err)
{
    struct balloon_config *balloon = device;
    uint64_t bytes;
    if (config_parse_size(text, &bytes) < 0 || bytes % (1ULL << 20) != 0)
        return error_fmt(err, -EINVAL, "%s is not a balloon size (expected " SIZE_EXPECTED ")",
                         subject);
    balloon->target_bytes = bytes;
    return 0;
}

static int parse_on_off(const char *subject, const char *text, bool *out, struct error *err)
{
    if (strcmp(text, "on") != 0 && strcmp(text, "off") != 0)
        return error_fmt(err, -EINVAL, "%s is not valid (expected " ONOFF_EXPECTED ")", subject);
    *out = strcmp(text, "on") == 0;
    return 0;
}

static int set_deflate_on_oom(void *device, const char *subject, const char *text,
                              struct error *err)
{
    return parse_on_off(subject, text, &((struct balloon_config *)device)->deflate_on_oom, err);
}

static int set_free_page_reporting(void *device, const char *subject, const char *text,
                                   struct error *err)
{
    return parse_on_off(subject, text, &((struct balloon_config *)device)->free_page_reporting,
                        err);
}

static int set_stats(void *device, const char *subject, const char *text, struct error *err)
{
    char *end = NULL;
    unsigned long seconds = strtoul(text, &end, 10);
    if (!*text || *end || text[0] == '-' || seconds > CONFIG_MAX_BALLOON_STATS)
        return error_fmt(err, -EINVAL, "%s is not valid (expected " STATS_EXPECTED ")", subject);
    ((struct balloon_config *)device)->stats_seconds = (unsigned)seconds;
    return 0;
}

static int get_size(const void *device, char **text)
{
    char size[24];
    return config_text(
        config_size_text(((const struct balloon_config *)device)->target_bytes, size, sizeof(size)),
        text);
}

static int get_deflate_on_oom(const void *device, char **text)
{
    return config_text(((const struct balloon_config *)device)->deflate_on_oom ? "on" : "off",
                       text);
}

static int get_free_page_reporting(const void *device, char **text)
{
    return config_text(((const struct balloon_config *)device)->free_page_reporting ? "on" : "off",
                       text);
}

static int get_stats(const void *device, char **text)
{
    return config_text_unsigned(((const struct balloon_config *)device)->stats_seconds, text);
}

static const struct config_device_key balloon_keys[] = {
    {"size", NULL, "SIZE", SIZE_EXPECTED, set_size, get_size, 0},
    {"deflate-on-oom", NULL, "on|off", ONOFF_EXPECTED, set_deflate_on_oom, get_deflate_on_oom, 0},
    {"stats", NULL, "SECONDS", STATS_EXPECTED, set_stats, get_stats, 0},
    {"free-page-reporting", NULL, "on|off", ONOFF_EXPECTED, set_free_page_reporting,
     get_free_page_reporting, 0},
};

const struct config_device_keys config_balloon_keys = {
    .flag = "--balloon",
    .list_key = "balloon",
    .what = "balloon",
    .spec = CONFIG_BALLOON_SPEC,
    .keys = balloon_keys,
    .count = sizeof(balloon_keys) / sizeof(balloon_keys[0]),
    .positional = true,
};

int config_set_balloon(struct vm_config *cfg, const char *label, const char *text,
                       struct error *err)
{
    struct balloon_config balloon = {.enabled = true};
    /* Messages begin with the setting as the user wrote it: the flag, or the file's key. */
    struct config_device_keys kind = config_balloon_keys;
    kind.flag = label;
    int r = config_parse_device_spec(&kind, text, &balloon, err);
    if (r == 0)
        cfg->balloon = balloon;
    return r;
}

/* "128M,deflate-on-oom=on,stats=5": the options that differ from their defaults. */
int config_get_balloon(const struct vm_config *cfg, char **text)
{
    const struct balloon_config *balloon = &cfg->balloon;
    if (!balloon->enabled)
        return config_text(NULL, text);
    char size[24], spec[160];
    int n = snprintf(spec, sizeof(spec), "%s",
                     config_size_text(balloon->target_bytes, size, sizeof(size)));
    if (balloon->deflate_on_oom)
        n += snprintf(spec + n, sizeof(spec) - (size_t)n, ",deflate-on-oom=on");
    if (balloon->stats_seconds)
        n += snprintf(spec + n, sizeof(spec) - (size_t)n, ",stats=%u", balloon->stats_seconds);
    if (balloon->free_page_reporting)
        snprintf(spec + n, sizeof(spec) - (size_t)n, ",free-page-reporting=on");
    return config_text(spec, text);
}
