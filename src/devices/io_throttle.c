/* A queue's rate limiter on the loop: admit or block a request, a one-shot timer for the exact
 * time the tokens are back (no polling), and the counters of the time spent waiting. */
#include <errno.h>
#include <string.h>

#include "kiln/devices/io_throttle.h"
#include "kiln/util/counter.h"

static void store_tokens(struct io_throttle *t)
{
    __atomic_store_n(&t->bytes_tokens, token_bucket_tokens(&t->limiter.bytes), __ATOMIC_RELAXED);
    __atomic_store_n(&t->ops_tokens, token_bucket_tokens(&t->limiter.ops), __ATOMIC_RELAXED);
}

void io_throttle_init(struct io_throttle *t, io_throttle_resume *resume, void *opaque)
{
    memset(t, 0, sizeof(*t));
    t->resume = resume;
    t->opaque = opaque;
}

/* The queue goes on: count the wait and let the device take it up. */
static void unblock(struct io_throttle *t)
{
    if (!t->blocked)
        return;
    t->blocked = false;
    counter_add(&t->throttled_ns, uv_hrtime() - t->blocked_ns);
    t->resume(t, t->opaque);
}

static void on_timer(uv_timer_t *timer)
{
    unblock(timer->data);
}

int io_throttle_set(struct io_throttle *t, const struct rate_limit_config *config, const char *what,
                    struct error *err)
{
    struct rate_limiter fresh;
    if (rate_limiter_init(&fresh, config, uv_hrtime()) < 0)
        return error_fmt(err, -EINVAL, "%s: a limit needs a refill time from 1 to %llu ms", what,
                         (unsigned long long)TOKEN_BUCKET_MAX_REFILL_MS);
    t->config = *config;
    t->limiter = fresh;
    store_tokens(t);
    if (t->blocked && t->attached)
        uv_timer_start(&t->timer, on_timer, 0, 0); /* soon, from the loop, not from here */
    else
        t->blocked = false;
    return 0;
}

int io_throttle_attach(struct io_throttle *t, uv_loop_t *loop, struct error *err)
{
    int r = uv_timer_init(loop, &t->timer);
    if (r < 0)
        return error_fmt(err, r, "rate limiter: cannot make its timer: %s", uv_strerror(r));
    t->timer.data = t;
    t->loop = loop;
    t->attached = true;
    return 0;
}

void io_throttle_detach(struct io_throttle *t)
{
    if (t->attached)
        uv_close((uv_handle_t *)&t->timer, NULL);
    t->attached = false;
}

bool io_throttle_admit(struct io_throttle *t, uint64_t bytes, uint64_t ops)
{
    if (!rate_limiter_limited(&t->limiter))
        return true;
    uint64_t now = uv_hrtime();
    uint64_t wait_ns = rate_limiter_consume(&t->limiter, bytes, ops, now);
    store_tokens(t);
    if (wait_ns == 0)
        return true;
    t->blocked = true;
    t->blocked_ns = now;
    counter_add(&t->throttled, 1);
    if (t->attached) {
        /* libuv counts timeouts from the loop's cached time: bring it to now first. The
         * timer may still come a little early (whole milliseconds): the device then asks
         * again and waits for the rest. */
        uv_update_time(t->loop);
        uint64_t ms = wait_ns / 1000000 + (wait_ns % 1000000 != 0); /* rounded up, no wrap */
        uv_timer_start(&t->timer, on_timer, ms, 0);
    }
    return false;
}

void io_throttle_read_counters(const struct io_throttle *t, struct io_throttle_counters *out)
{
    out->throttled = counter_read(&t->throttled);
    out->throttled_ms = counter_read(&t->throttled_ns) / 1000000;
    out->bytes_tokens = __atomic_load_n(&t->bytes_tokens, __ATOMIC_RELAXED);
    out->ops_tokens = __atomic_load_n(&t->ops_tokens, __ATOMIC_RELAXED);
}
