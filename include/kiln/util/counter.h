/* Monotonic statistics one thread bumps while another reads them (vCPU exits, virtio queues,
 * device bytes): relaxed atomics, because a reader needs each value whole, never an order. */
#ifndef KILN_UTIL_COUNTER_H
#define KILN_UTIL_COUNTER_H

#include <stdint.h>

/* One relaxed add: no fence, no lock, so counting costs nothing measurable on a hot path. */
static inline void counter_add(uint64_t *counter, uint64_t n)
{
    __atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

/* Any thread, at any time: the value as some recent moment saw it. */
static inline uint64_t counter_read(const uint64_t *counter)
{
    return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

#endif
