/* Token buckets: linear refill in exact integer arithmetic (a fraction of a token is carried,
 * never lost), a one-time burst, and debt for requests bigger than the bucket. */
#include <errno.h>
#include <string.h>

#include "kiln/util/token_bucket.h"

typedef unsigned __int128 u128;

int token_bucket_init(struct token_bucket *b, const struct token_bucket_config *config,
                      uint64_t now_ns)
{
    memset(b, 0, sizeof(*b));
    b->last_ns = now_ns;
    if (config->size == 0)
        return 0;
    if (config->refill_time_ms == 0 || config->refill_time_ms > TOKEN_BUCKET_MAX_REFILL_MS)
        return -EINVAL;
    b->config = *config;
    b->refill_ns = config->refill_time_ms * 1000000;
    b->budget = config->size;
    b->burst = config->one_time_burst;
    return 0;
}

/* Adds the tokens earned since last_ns: size per refill_ns, paying the debt first. */
static void refill(struct token_bucket *b, uint64_t now_ns)
{
    if (now_ns <= b->last_ns)
        return;
    uint64_t elapsed = now_ns - b->last_ns;
    b->last_ns = now_ns;
    uint64_t room = b->config.size - b->budget + b->debt; /* tokens until full, debt paid */
    /* size tokens per whole refill time, then the part of one: refill_ns < 2^64 and the
     * remainder < refill_ns, so no product below overflows 128 bits. */
    u128 acc = (u128)(elapsed % b->refill_ns) * b->config.size + b->remainder;
    u128 earned128 = (u128)(elapsed / b->refill_ns) * b->config.size + acc / b->refill_ns;
    b->remainder = (uint64_t)(acc % b->refill_ns);
    uint64_t earned = earned128 > UINT64_MAX ? UINT64_MAX : (uint64_t)earned128;
    if (earned >= room) {
        b->debt = 0;
        b->budget = b->config.size;
        b->remainder = 0; /* a full bucket carries no fraction */
        return;
    }
    uint64_t paid = earned < b->debt ? earned : b->debt;
    b->debt -= paid;
    b->budget += earned - paid;
}

/* Nanoseconds until `tokens` more are earned, counting the fraction already carried. */
static uint64_t time_for(const struct token_bucket *b, uint64_t tokens)
{
    u128 needed = (u128)tokens * b->refill_ns; /* < 2^128: both factors are below 2^64 */
    if (needed <= b->remainder)
        return 1;
    needed -= b->remainder;
    u128 ns = (needed + b->config.size - 1) / b->config.size;
    return ns > UINT64_MAX ? UINT64_MAX : (uint64_t)ns;
}

uint64_t token_bucket_wait_ns(struct token_bucket *b, uint64_t n, uint64_t now_ns)
{
    if (!token_bucket_limited(b))
        return 0;
    refill(b, now_ns);
    if (n == 0)
        return 0;
    if (b->debt == 0) {
        if (n <= b->burst || n - b->burst <= b->budget)
            return 0;
        if (n > b->config.size && b->budget == b->config.size)
            return 0; /* too big for any bucket: it goes when this one is full */
    }
    /* Wait for the debt to be paid and either n - burst tokens or, for a request bigger than
     * the bucket, a full bucket. */
    uint64_t from_bucket = n > b->burst ? n - b->burst : 0;
    uint64_t target = from_bucket > b->config.size ? b->config.size : from_bucket;
    u128 missing = (u128)target - b->budget + b->debt;
    return time_for(b, missing > UINT64_MAX ? UINT64_MAX : (uint64_t)missing);
}

void token_bucket_take(struct token_bucket *b, uint64_t n)
{
    if (!token_bucket_limited(b))
        return;
    uint64_t from_burst = n < b->burst ? n : b->burst;
    b->burst -= from_burst;
    n -= from_burst;
    if (n <= b->budget) {
        b->budget -= n;
        return;
    }
    b->debt += n - b->budget;
    b->budget = 0;
}

uint64_t token_bucket_tokens(const struct token_bucket *b)
{
    if (b->debt > 0)
        return 0;
    return b->budget + b->burst < b->budget ? UINT64_MAX : b->budget + b->burst;
}

int rate_limiter_init(struct rate_limiter *rl, const struct rate_limit_config *config,
                      uint64_t now_ns)
{
    int r = token_bucket_init(&rl->bytes, &config->bytes, now_ns);
    int r2 = token_bucket_init(&rl->ops, &config->ops, now_ns);
    return r < 0 ? r : r2;
}

bool rate_limiter_limited(const struct rate_limiter *rl)
{
    return token_bucket_limited(&rl->bytes) || token_bucket_limited(&rl->ops);
}

uint64_t rate_limiter_consume(struct rate_limiter *rl, uint64_t bytes, uint64_t ops,
                              uint64_t now_ns)
{
    uint64_t wait_bytes = token_bucket_wait_ns(&rl->bytes, bytes, now_ns);
    uint64_t wait_ops = token_bucket_wait_ns(&rl->ops, ops, now_ns);
    if (wait_bytes > 0 || wait_ops > 0)
        return wait_bytes > wait_ops ? wait_bytes : wait_ops;
    token_bucket_take(&rl->bytes, bytes);
    token_bucket_take(&rl->ops, ops);
    return 0;
}
