/* Unit tests for the token bucket and rate limiter: refill over time, the one-time burst, no
 * limit at size 0, requests bigger than the bucket, and the largest values without overflow. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kiln/util/token_bucket.h"

#define MS 1000000ULL
#define S  1000000000ULL

static struct token_bucket bucket(uint64_t size, uint64_t burst, uint64_t refill_ms)
{
    struct token_bucket b;
    struct token_bucket_config c = {
        .size = size, .one_time_burst = burst, .refill_time_ms = refill_ms};
    assert_int_equal(token_bucket_init(&b, &c, 0), 0);
    return b;
}

/* Takes n at now if it can; returns the wait otherwise. */
static uint64_t consume(struct token_bucket *b, uint64_t n, uint64_t now)
{
    uint64_t wait = token_bucket_wait_ns(b, n, now);
    if (wait == 0)
        token_bucket_take(b, n);
    return wait;
}

/* 1000 tokens a second: a full bucket serves 1000, then one token per millisecond comes back. */
static void test_refills_linearly(void **state)
{
    struct token_bucket b = bucket(1000, 0, 1000);
    assert_int_equal(consume(&b, 1000, 0), 0);
    assert_int_equal(consume(&b, 1, 0), 1 * MS); /* exactly when the next token is whole */
    assert_int_equal(consume(&b, 10, 5 * MS), 5 * MS);
    assert_int_equal(consume(&b, 10, 10 * MS), 0);
    assert_int_equal(token_bucket_tokens(&b), 0);
    /* Half a second: 500 tokens, never more than the size however long it waits. */
    assert_int_equal(token_bucket_wait_ns(&b, 0, 510 * MS), 0);
    assert_int_equal(token_bucket_tokens(&b), 500);
    assert_int_equal(token_bucket_wait_ns(&b, 1, 100 * S), 0);
    assert_int_equal(token_bucket_tokens(&b), 1000);
}

/* Fractions of a token are carried, not lost: 3 tokens per second asked every 100 ms. */
static void test_fractions_are_carried(void **state)
{
    struct token_bucket b = bucket(3, 0, 1000);
    assert_int_equal(consume(&b, 3, 0), 0);
    uint64_t served = 0;
    for (uint64_t t = 100 * MS; t <= 10 * S; t += 100 * MS)
        if (consume(&b, 1, t) == 0)
            served++;
    assert_int_equal(served, 30); /* 10 s at 3 a second */
}

/* The burst goes first, once; after it only the bucket's rate is left. */
static void test_one_time_burst(void **state)
{
    struct token_bucket b = bucket(100, 400, 1000);
    assert_int_equal(token_bucket_tokens(&b), 500);
    assert_int_equal(consume(&b, 450, 0), 0); /* 400 burst + 50 of the bucket */
    assert_int_equal(token_bucket_tokens(&b), 50);
    assert_int_equal(consume(&b, 60, 0), 100 * MS);
    assert_int_equal(token_bucket_wait_ns(&b, 0, 10 * S), 0);
    assert_int_equal(token_bucket_tokens(&b), 100); /* the burst never comes back */
    assert_int_equal(consume(&b, 101, 10 * S), 0);  /* bigger than size: passes when full */
    assert_int_equal(consume(&b, 1, 10 * S), 20 * MS);
}

/* Size 0 is no limit at all, whatever the other fields say. */
static void test_size_zero_is_unlimited(void **state)
{
    struct token_bucket b;
    struct token_bucket_config c = {.size = 0, .one_time_burst = 5, .refill_time_ms = 0};
    assert_int_equal(token_bucket_init(&b, &c, 0), 0);
    assert_false(token_bucket_limited(&b));
    assert_int_equal(consume(&b, UINT64_MAX, 0), 0);
    assert_int_equal(consume(&b, UINT64_MAX, 0), 0);
}

static void test_bad_refill_times(void **state)
{
    struct token_bucket b;
    struct token_bucket_config zero = {.size = 1, .refill_time_ms = 0};
    assert_int_equal(token_bucket_init(&b, &zero, 0), -EINVAL);
    assert_false(token_bucket_limited(&b));
    struct token_bucket_config huge = {.size = 1, .refill_time_ms = TOKEN_BUCKET_MAX_REFILL_MS + 1};
    assert_int_equal(token_bucket_init(&b, &huge, 0), -EINVAL);
}

/* A request bigger than the bucket waits for a full bucket, passes, and its excess is owed:
 * 10 tokens a second and a 35-token request: the next token comes 2.5 s + 0.1 s later. */
static void test_request_bigger_than_size(void **state)
{
    struct token_bucket b = bucket(10, 0, 1000);
    assert_int_equal(consume(&b, 5, 0), 0);
    assert_int_equal(consume(&b, 35, 0), 500 * MS); /* waits for the bucket to be full */
    assert_int_equal(consume(&b, 35, 500 * MS), 0);
    assert_int_equal(token_bucket_tokens(&b), 0);
    assert_int_equal(consume(&b, 1, 500 * MS), 2600 * MS);
    assert_int_equal(consume(&b, 1, 3099 * MS), 1 * MS);
    assert_int_equal(consume(&b, 1, 3100 * MS), 0);
    /* Over 100 s of 35-token requests, the rate stays 10 a second. */
    uint64_t t = 3100 * MS, taken = 0;
    while (t < 103100 * MS) {
        uint64_t wait = consume(&b, 35, t);
        if (wait == 0)
            taken += 35;
        t += wait ? wait : 1;
    }
    assert_in_range(taken, 1000 - 35, 1000 + 35);
}

/* The largest sizes and refill times neither overflow nor stall. */
static void test_maximum_values(void **state)
{
    struct token_bucket b = bucket(UINT64_MAX, UINT64_MAX, TOKEN_BUCKET_MAX_REFILL_MS);
    assert_int_equal(token_bucket_tokens(&b), UINT64_MAX); /* saturates */
    assert_int_equal(consume(&b, UINT64_MAX, 0), 0);       /* the burst */
    assert_int_equal(consume(&b, UINT64_MAX, 0), 0);       /* the bucket */
    uint64_t wait = consume(&b, UINT64_MAX, 0);
    assert_true(wait > 0); /* a whole refill time: about 584 years, in 64 bits */
    assert_int_equal(consume(&b, 1, UINT64_MAX), 0);

    struct token_bucket small = bucket(1, 0, TOKEN_BUCKET_MAX_REFILL_MS);
    assert_int_equal(consume(&small, 1, 0), 0);
    assert_int_equal(consume(&small, 1, 1), TOKEN_BUCKET_MAX_REFILL_MS * MS - 1);
    /* A request of UINT64_MAX tokens on a tiny bucket: passes when full, owes the rest. */
    struct token_bucket tiny = bucket(1, 0, 1);
    assert_int_equal(consume(&tiny, UINT64_MAX, 0), 0);
    assert_int_equal(consume(&tiny, 1, 0), UINT64_MAX); /* saturated, not wrapped */
    assert_true(consume(&tiny, 1, UINT64_MAX) > 0);     /* 2^64 tokens at 1000 a second */
}

/* Both buckets must have the tokens: a refusal takes from neither. */
static void test_rate_limiter_takes_both_or_none(void **state)
{
    struct rate_limiter rl;
    struct rate_limit_config c = {.bytes = {.size = 1000, .refill_time_ms = 1000},
                                  .ops = {.size = 2, .refill_time_ms = 1000}};
    assert_int_equal(rate_limiter_init(&rl, &c, 0), 0);
    assert_true(rate_limiter_limited(&rl));
    assert_int_equal(rate_limiter_consume(&rl, 100, 1, 0), 0);
    assert_int_equal(rate_limiter_consume(&rl, 100, 1, 0), 0);
    assert_int_equal(rate_limiter_consume(&rl, 100, 1, 0), 500 * MS); /* out of ops */
    assert_int_equal(token_bucket_tokens(&rl.bytes), 800);            /* bytes not taken */
    assert_int_equal(rate_limiter_consume(&rl, 1000, 1, 500 * MS), 0);
    assert_int_equal(rate_limiter_consume(&rl, 100, 0, 500 * MS), 100 * MS); /* now bytes */
    assert_int_equal(token_bucket_tokens(&rl.ops), 0);

    struct rate_limit_config none = {.bytes = {0}, .ops = {0}};
    assert_int_equal(rate_limiter_init(&rl, &none, 0), 0);
    assert_false(rate_limiter_limited(&rl));
    assert_int_equal(rate_limiter_consume(&rl, UINT64_MAX, UINT64_MAX, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refills_linearly),
        cmocka_unit_test(test_fractions_are_carried),
        cmocka_unit_test(test_one_time_burst),
        cmocka_unit_test(test_size_zero_is_unlimited),
        cmocka_unit_test(test_bad_refill_times),
        cmocka_unit_test(test_request_bigger_than_size),
        cmocka_unit_test(test_maximum_values),
        cmocka_unit_test(test_rate_limiter_takes_both_or_none),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
