/* The migration link's socket I/O: whole writes and reads on a connected socket, each wait
 * bounded by the link's timeout and ended at once by mig_link_cancel. */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include "mig_link_private.h"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool is_cancelled(struct mig_link *l)
{
    return __atomic_load_n(&l->cancelled, __ATOMIC_SEQ_CST);
}

/* Waits until the socket is ready for events: 0, -ETIMEDOUT or -ECANCELED. A cancel shuts the
 * socket down, which wakes poll; its flag, set first, tells that apart from the peer leaving. */
static int wait_ready(struct mig_link *l, short events)
{
    long long deadline = l->timeout_ms < 0 ? -1 : now_ms() + l->timeout_ms;
    for (;;) {
        if (is_cancelled(l))
            return -ECANCELED;
        int left = -1;
        if (deadline >= 0) {
            long long remaining = deadline - now_ms();
            if (remaining <= 0)
                return -ETIMEDOUT;
            left = (int)remaining;
        }
        struct pollfd p = {.fd = l->fd, .events = events};
        int r = poll(&p, 1, left);
        if (r > 0)
            return is_cancelled(l) ? -ECANCELED : 0;
        if (r < 0 && errno != EINTR)
            return -errno;
    }
}

static int closed_or(struct mig_link *l, int e)
{
    if (is_cancelled(l))
        return -ECANCELED;
    return e == EPIPE || e == ECONNRESET ? -EPIPE : -e;
}

int mig_io_write(struct mig_link *l, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        if (is_cancelled(l))
            return -ECANCELED;
        ssize_t n = send(l->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            __atomic_add_fetch(&l->bytes_sent, (uint64_t)n, __ATOMIC_RELAXED);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN)
            return closed_or(l, errno);
        int r = wait_ready(l, POLLOUT);
        if (r < 0)
            return r;
    }
    return 0;
}

long mig_io_read_some(struct mig_link *l, void *buf, size_t len)
{
    for (;;) {
        if (is_cancelled(l))
            return -ECANCELED;
        ssize_t n = recv(l->fd, buf, len, MSG_DONTWAIT);
        if (n > 0) {
            __atomic_add_fetch(&l->bytes_received, (uint64_t)n, __ATOMIC_RELAXED);
            return n;
        }
        if (n == 0)
            return closed_or(l, EPIPE);
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return closed_or(l, errno);
        int r = wait_ready(l, POLLIN);
        if (r < 0)
            return r;
    }
}

int mig_io_read(struct mig_link *l, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        long n = mig_io_read_some(l, p, len);
        if (n < 0)
            return (int)n;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}
