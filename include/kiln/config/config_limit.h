/* Rate limit settings (docs/resources.md, "Rate limits"): the bw, ops and burst values of a
 * disk's, a net device's and --rng-limit's keys, parsed into and written from token buckets. */
#ifndef KILN_CONFIG_LIMIT_H
#define KILN_CONFIG_LIMIT_H

#include "kiln/config/config_settings.h"
#include "kiln/util/token_bucket.h"

/* The longest refill time a setting takes: an hour. */
#define CONFIG_MAX_REFILL_MS 3600000

#define CONFIG_LIMIT_BW_EXPECTED                                                                   \
    "bytes a second such as 50M, or SIZE/TIME such as 5M/100ms; 0 for no limit"
#define CONFIG_LIMIT_OPS_EXPECTED                                                                  \
    "a count a second such as 1000, or COUNT/TIME such as 100/100ms; 0 for no limit"
#define CONFIG_LIMIT_BW_BURST_EXPECTED  "a size such as 100M, spent once before the rate"
#define CONFIG_LIMIT_OPS_BURST_EXPECTED "a count such as 5000, spent once before the rate"

/* Which value of a limit a key sets. */
enum config_limit_part {
    CONFIG_LIMIT_BW,
    CONFIG_LIMIT_BW_BURST,
    CONFIG_LIMIT_OPS,
    CONFIG_LIMIT_OPS_BURST
};

/* Parses one value into limit (subject begins the message, as for config_device_key's set):
 * a rate "50M" is size 50 MiB refilled every 1000 ms; "5M/100ms" (or "/2s") a size and its
 * refill time; 0 removes the limit. -EINVAL with one line for anything else. */
int config_limit_set(struct rate_limit_config *limit, enum config_limit_part part,
                     const char *subject, const char *text, struct error *err);
/* The value as config_limit_set takes it, *text NULL when unset. 0 or -ENOMEM. */
int config_limit_get(const struct rate_limit_config *limit, enum config_limit_part part,
                     char **text);
/* A burst needs its rate: NULL if limit is whole, else the key (of names[part]) that lacks
 * its rate. */
const char *config_limit_incomplete(const struct rate_limit_config *limit,
                                    const char *const names[4]);

/* --rng-limit's options (bw=, bw-burst=, ops=, ops-burst=), as a --disk value's. */
extern const struct config_device_keys config_rng_limit_keys;
#define CONFIG_RNG_LIMIT_SPEC "[bw=RATE][,bw-burst=SIZE][,ops=RATE][,ops-burst=N]"
int config_set_rng_limit(struct vm_config *cfg, const char *label, const char *text,
                         struct error *err);
int config_get_rng_limit(const struct vm_config *cfg, char **text);

#endif
