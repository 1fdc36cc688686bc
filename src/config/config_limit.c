/* Rate limit values: "50M" (bytes a second), "1000" (ops a second), "5M/100ms" (a bucket and
 * its refill time), bursts; and --rng-limit's options, which are these values by name. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/config/config_limit.h"

static struct token_bucket_config *bucket_of(struct rate_limit_config *limit,
                                             enum config_limit_part part)
{
    return part == CONFIG_LIMIT_BW || part == CONFIG_LIMIT_BW_BURST ? &limit->bytes : &limit->ops;
}

static bool is_bytes(enum config_limit_part part)
{
    return part == CONFIG_LIMIT_BW || part == CONFIG_LIMIT_BW_BURST;
}

static bool is_burst(enum config_limit_part part)
{
    return part == CONFIG_LIMIT_BW_BURST || part == CONFIG_LIMIT_OPS_BURST;
}

static const char *expected_text(enum config_limit_part part)
{
    switch (part) {
    case CONFIG_LIMIT_BW:
        return CONFIG_LIMIT_BW_EXPECTED;
    case CONFIG_LIMIT_BW_BURST:
        return CONFIG_LIMIT_BW_BURST_EXPECTED;
    case CONFIG_LIMIT_OPS:
        return CONFIG_LIMIT_OPS_EXPECTED;
    default:
        return CONFIG_LIMIT_OPS_BURST_EXPECTED;
    }
}

/* A count in plain digits (no suffix: "10K" would be 10240 for a size), or a size. */
static int parse_amount(const char *text, size_t len, bool bytes, uint64_t *out)
{
    char digits[32];
    if (len == 0 || len >= sizeof(digits))
        return -EINVAL;
    memcpy(digits, text, len);
    digits[len] = '\0';
    if (bytes)
        return config_parse_size(digits, out);
    if (strspn(digits, "0123456789") != len || len > 19)
        return -EINVAL;
    *out = strtoull(digits, NULL, 10);
    return 0;
}

/* "100ms" or "2s": 1 ms to CONFIG_MAX_REFILL_MS. */
static int parse_refill(const char *text, uint64_t *ms)
{
    size_t digits = strspn(text, "0123456789");
    if (digits == 0 || digits > 10)
        return -EINVAL;
    uint64_t n = strtoull(text, NULL, 10);
    const char *unit = text + digits;
    if (strcmp(unit, "s") == 0)
        n *= 1000;
    else if (strcmp(unit, "ms") != 0)
        return -EINVAL;
    if (n == 0 || n > CONFIG_MAX_REFILL_MS)
        return -EINVAL;
    *ms = n;
    return 0;
}

int config_limit_set(struct rate_limit_config *limit, enum config_limit_part part,
                     const char *subject, const char *text, struct error *err)
{
    struct token_bucket_config *bucket = bucket_of(limit, part);
    const char *slash = strchr(text, '/');
    uint64_t amount = 0, refill_ms = 1000;
    size_t len = slash ? (size_t)(slash - text) : strlen(text);
    int r = parse_amount(text, len, is_bytes(part), &amount);
    if (r == 0 && slash)
        r = is_burst(part) ? -EINVAL : parse_refill(slash + 1, &refill_ms);
    if (r < 0)
        return error_fmt(err, -EINVAL,
                         "%s is not valid (expected %s; a time from 1ms to " CONFIG_STRINGIFY(
                             CONFIG_MAX_REFILL_MS) "ms)",
                         subject, expected_text(part));
    if (is_burst(part)) {
        bucket->one_time_burst = amount;
    } else {
        bucket->size = amount;
        bucket->refill_time_ms = amount ? refill_ms : 0;
    }
    return 0;
}

int config_limit_get(const struct rate_limit_config *limit, enum config_limit_part part,
                     char **text)
{
    const struct token_bucket_config *bucket = bucket_of((struct rate_limit_config *)limit, part);
    uint64_t amount = is_burst(part) ? bucket->one_time_burst : bucket->size;
    if (amount == 0)
        return config_text(NULL, text);
    char value[64], refill[24] = "";
    if (is_bytes(part))
        config_size_text(amount, value, sizeof(value));
    else
        snprintf(value, sizeof(value), "%llu", (unsigned long long)amount);
    if (!is_burst(part) && bucket->refill_time_ms != 1000)
        snprintf(refill, sizeof(refill), "/%llums", (unsigned long long)bucket->refill_time_ms);
    strncat(value, refill, sizeof(value) - strlen(value) - 1);
    return config_text(value, text);
}

const char *config_limit_incomplete(const struct rate_limit_config *limit,
                                    const char *const names[4])
{
    if (limit->bytes.one_time_burst && !limit->bytes.size)
        return names[CONFIG_LIMIT_BW_BURST];
    if (limit->ops.one_time_burst && !limit->ops.size)
        return names[CONFIG_LIMIT_OPS_BURST];
    return NULL;
}

/* --rng-limit's options: the same values, on the rng's one limit. */
static int set_bw(void *limit, const char *subject, const char *text, struct error *err)
{
    return config_limit_set(limit, CONFIG_LIMIT_BW, subject, text, err);
}

static int set_bw_burst(void *limit, const char *subject, const char *text, struct error *err)
{
    return config_limit_set(limit, CONFIG_LIMIT_BW_BURST, subject, text, err);
}

static int set_ops(void *limit, const char *subject, const char *text, struct error *err)
{
    return config_limit_set(limit, CONFIG_LIMIT_OPS, subject, text, err);
}

static int set_ops_burst(void *limit, const char *subject, const char *text, struct error *err)
{
    return config_limit_set(limit, CONFIG_LIMIT_OPS_BURST, subject, text, err);
}

static int get_bw(const void *limit, char **text)
{
    return config_limit_get(limit, CONFIG_LIMIT_BW, text);
}

static int get_bw_burst(const void *limit, char **text)
{
    return config_limit_get(limit, CONFIG_LIMIT_BW_BURST, text);
}

static int get_ops(const void *limit, char **text)
{
    return config_limit_get(limit, CONFIG_LIMIT_OPS, text);
}

static int get_ops_burst(const void *limit, char **text)
{
    return config_limit_get(limit, CONFIG_LIMIT_OPS_BURST, text);
}

static const struct config_device_key rng_limit_keys[] = {
    {"bw", NULL, "RATE", CONFIG_LIMIT_BW_EXPECTED, set_bw, get_bw, 0},
    {"bw-burst", NULL, "SIZE", CONFIG_LIMIT_BW_BURST_EXPECTED, set_bw_burst, get_bw_burst, 0},
    {"ops", NULL, "RATE", CONFIG_LIMIT_OPS_EXPECTED, set_ops, get_ops, 0},
    {"ops-burst", NULL, "N", CONFIG_LIMIT_OPS_BURST_EXPECTED, set_ops_burst, get_ops_burst, 0},
};

const struct config_device_keys config_rng_limit_keys = {
    .flag = "--rng-limit",
    .list_key = "rng-limit",
    .what = "rate limits",
    .spec = CONFIG_RNG_LIMIT_SPEC,
    .keys = rng_limit_keys,
    .count = sizeof(rng_limit_keys) / sizeof(rng_limit_keys[0]),
    .positional = false,
    .all_optional = true,
};

int config_set_rng_limit(struct vm_config *cfg, const char *label, const char *text,
                         struct error *err)
{
    struct rate_limit_config limit;
    memset(&limit, 0, sizeof(limit));
    struct config_device_keys kind = config_rng_limit_keys;
    kind.flag = label; /* "--rng-limit", or "vm.yaml:3:12: rng-limit" */
    int r = config_parse_device_spec(&kind, text, &limit, err);
    if (r == 0)
        cfg->rng_limit = limit;
    return r;
}

/* "bw=1M,ops=100": the options that are set, in the table's order; NULL for no limit. */
int config_get_rng_limit(const struct vm_config *cfg, char **text)
{
    char spec[256] = "";
    for (size_t i = 0; i < config_rng_limit_keys.count; i++) {
        const struct config_device_key *key = &config_rng_limit_keys.keys[i];
        char *value = NULL;
        if (key->get(&cfg->rng_limit, &value) < 0)
            return -ENOMEM;
        if (value) {
            size_t used = strlen(spec);
            snprintf(spec + used, sizeof(spec) - used, "%s%s=%s", used ? "," : "", key->key, value);
            free(value);
        }
    }
    return config_text(spec[0] ? spec : NULL, text);
}
