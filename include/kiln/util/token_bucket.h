/* Token buckets and rate limiters with Firecracker's semantics (size, refill time, one-time
 * burst): pure arithmetic on a monotonic time the caller passes in, so tests are exact. */
#ifndef KILN_UTIL_TOKEN_BUCKET_H
#define KILN_UTIL_TOKEN_BUCKET_H

#include <stdbool.h>
#include <stdint.h>

/* The longest refill time a bucket takes: its nanoseconds must fit 64 bits. */
#define TOKEN_BUCKET_MAX_REFILL_MS (UINT64_MAX / 1000000)

/* One bucket's settings. size 0 means no limit (the bucket lets everything through). */
struct token_bucket_config {
    uint64_t size;           /* tokens the bucket holds when full */
    uint64_t one_time_burst; /* extra tokens at the start, spent first, never refilled */
    uint64_t refill_time_ms; /* time to refill `size` tokens from empty, linearly (> 0) */
};

struct token_bucket {
    struct token_bucket_config config;
    uint64_t refill_ns;
    uint64_t budget;    /* tokens in the bucket, at most config.size */
    uint64_t burst;     /* one-time burst tokens left */
    uint64_t debt;      /* tokens a request bigger than size took beyond the bucket: refills
                           pay it back before the bucket fills again */
    uint64_t remainder; /* a token's fraction refilled but not yet whole, in ns * size units */
    uint64_t last_ns;   /* when the bucket was last refilled */
};

/* A full bucket (and its whole burst) at now_ns. -EINVAL if size > 0 and refill_time_ms is 0
 * or above TOKEN_BUCKET_MAX_REFILL_MS (the bucket is then left unlimited). */
int token_bucket_init(struct token_bucket *b, const struct token_bucket_config *config,
                      uint64_t now_ns);
static inline bool token_bucket_limited(const struct token_bucket *b)
{
    return b->config.size > 0;
}
/* Refills, then: 0 if n tokens can be taken at now_ns, else the nanoseconds until they can
 * (UINT64_MAX at most). A request bigger than the bucket passes when the bucket is full: it empties
 * it and what it took beyond is owed (debt), so the average rate still holds. Refills first. */
uint64_t token_bucket_wait_ns(struct token_bucket *b, uint64_t n, uint64_t now_ns);
/* Takes n tokens; only right after token_bucket_wait_ns said 0 for n at the same time. */
void token_bucket_take(struct token_bucket *b, uint64_t n);
/* Tokens that can be taken now (burst + bucket), as of the last refill; 0 while in debt. */
uint64_t token_bucket_tokens(const struct token_bucket *b);

/* A rate limiter: a bucket of bytes and one of operations, each optional. */
struct rate_limit_config {
    struct token_bucket_config bytes, ops;
};
struct rate_limiter {
    struct token_bucket bytes, ops;
};

int rate_limiter_init(struct rate_limiter *rl, const struct rate_limit_config *config,
                      uint64_t now_ns);
bool rate_limiter_limited(const struct rate_limiter *rl);
/* Takes `bytes` and `ops` tokens if both buckets have them (then returns 0), else takes none
 * and returns the nanoseconds until both have. */
uint64_t rate_limiter_consume(struct rate_limiter *rl, uint64_t bytes, uint64_t ops,
                              uint64_t now_ns);

#endif
