/* A device queue's rate limiter on the event loop: a request over budget waits (never dropped)
 * while the queue is left alone, and one libuv timer at the time its tokens are back resumes it. */
#ifndef KILN_DEVICES_IO_THROTTLE_H
#define KILN_DEVICES_IO_THROTTLE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "kiln/util/error.h"
#include "kiln/util/token_bucket.h"

struct io_throttle;
/* Called on the loop thread, without the device's lock, when a blocked queue may go on. */
typedef void io_throttle_resume(struct io_throttle *t, void *opaque);

/* What the counters show (GET /vm/counters): requests that had to wait, the time they waited,
 * and the tokens left in each bucket (0 for a bucket without a limit). */
struct io_throttle_counters {
    uint64_t throttled, throttled_ms;
    uint64_t bytes_tokens, ops_tokens;
};

struct io_throttle {
    struct rate_limit_config config;
    struct rate_limiter limiter;
    uv_loop_t *loop;
    uv_timer_t timer;
    bool attached;
    bool blocked;        /* a request waits for tokens: the queue is not popped meanwhile */
    uint64_t blocked_ns; /* since when */
    io_throttle_resume *resume;
    void *opaque;
    /* kiln/util/counter.h: bumped on the loop, read from any thread. */
    uint64_t throttled, throttled_ns;
    uint64_t bytes_tokens, ops_tokens; /* as of the last request (stored whole, relaxed) */
};

/* No limit until io_throttle_set. resume(t, opaque) is how the device takes up its queue. */
void io_throttle_init(struct io_throttle *t, io_throttle_resume *resume, void *opaque);
/* New limits (loop thread or before the loop runs; the device's lock may be held): full
 * buckets, bursts included. A blocked queue is resumed from the loop's next turn, to be judged
 * by the new limits. -EINVAL (with err) for a bucket
 * with a size and no refill time. */
int io_throttle_set(struct io_throttle *t, const struct rate_limit_config *config, const char *what,
                    struct error *err);
/* Its timer on the loop / closed. Without it, a blocked queue is resumed at the next set. */
int io_throttle_attach(struct io_throttle *t, uv_loop_t *loop, struct error *err);
void io_throttle_detach(struct io_throttle *t);

static inline bool io_throttle_blocked(const struct io_throttle *t)
{
    return t->blocked;
}
/* Takes the tokens of a request of `bytes` and `ops` and returns true; or returns false, marks
 * the queue blocked and arms the timer for when the tokens will be there. Loop thread. */
bool io_throttle_admit(struct io_throttle *t, uint64_t bytes, uint64_t ops);

void io_throttle_read_counters(const struct io_throttle *t, struct io_throttle_counters *out);

#endif
