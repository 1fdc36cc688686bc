/* Split virtqueues (virtio 1.2 §2.7) as a device sees them: validating the rings the driver
 * set up, popping descriptor chains as bounds-checked iovecs, pushing used entries. */
#ifndef KILN_VIRTIO_VIRTQUEUE_H
#define KILN_VIRTIO_VIRTQUEUE_H

#include <linux/virtio_ring.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "kiln/vm/guest_mem.h"

/* The largest queue size kiln offers (QueueNumMax); a device may offer less. */
#define VIRTQ_MAX_SIZE 256
/* A chain is refused if its buffers add up to more than this: it bounds what one request can
 * make the VMM touch and keeps every length sum far from overflowing. */
#define VIRTQ_MAX_CHAIN_BYTES (64ULL << 20)

/* One queue's state. The guest-set fields (size, *_gpa) are written by the transport; the
 * rest belongs to virtqueue.c. Not thread-safe: the transport's lock serialises access. */
struct virtqueue {
    const struct guest_mem *mem;
    uint16_t max_size; /* what the device offers, a power of 2 <= VIRTQ_MAX_SIZE */
    uint16_t size;     /* QueueNum as the driver wrote it */
    uint64_t desc_gpa, avail_gpa, used_gpa;
    bool ready; /* QueueReady accepted: the rings below are valid host pointers */

    bool event_idx;       /* VIRTIO_RING_F_EVENT_IDX negotiated */
    bool indirect;        /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
    uint16_t last_avail;  /* next avail ring slot the device will read */
    uint16_t used_idx;    /* the device's copy of used->idx */
    uint16_t signalled;   /* used_idx when the guest was last interrupted (EVENT_IDX) */
    bool signalled_valid; /* false until the first interrupt after ready/reset */
    bool quiet;           /* doorbells suppressed while the device drains (virtqueue_quiet) */
    /* The longest chain taken, in bytes: VIRTQ_MAX_CHAIN_BYTES after virtqueue_reset, more
     * for a device whose buffers are not data it reads or writes (a balloon's free page
     * reports); virtqueue_restore keeps it. */
    uint64_t max_chain_bytes;

    /* Heads popped and not yet pushed: a driver that offers one of them again, before the
     * device gave it back, is refused (a broken ring), so at most `size` requests are ever in
     * flight, whatever the driver does. popped_heads[slot] is the head taken from avail slot
     * `slot`, so virtqueue_unpop releases exactly what it puts back. */
    uint8_t busy_heads[VIRTQ_MAX_SIZE / 8];
    uint16_t busy_count;
    uint16_t popped_heads[VIRTQ_MAX_SIZE];

    struct vring_desc *desc; /* host pointers, set by virtqueue_enable() */
    struct vring_avail *avail;
    struct vring_used *used;
};

/* A popped chain: device-readable buffers first (iov[0..nreadable)), then device-writable ones
 * (iov[nreadable..nreadable+nwritable)). Every iov lies entirely inside guest RAM. */
struct virtq_chain {
    uint16_t head; /* the id to give back with virtqueue_push() */
    uint16_t nreadable, nwritable;
    uint64_t readable_len, writable_len;
    struct iovec iov[VIRTQ_MAX_SIZE];
};

/* The chain's device-writable buffers, for the iov_* helpers (kiln/iov.h). */
static inline const struct iovec *virtq_chain_writable(const struct virtq_chain *chain)
{
    return chain->iov + chain->nreadable;
}

/* Result of virtqueue_pop(). */
enum virtq_pop_result {
    VIRTQ_POP_EMPTY = 0, /* no new chain */
    VIRTQ_POP_CHAIN,     /* *chain is a valid chain */
    /* The chain at chain->head is malformed (what is in *why): it is consumed; give it back
     * with virtqueue_push(vq, chain->head, 0) and treat the request as failed. */
    VIRTQ_POP_BAD_CHAIN,
    /* The ring itself is corrupt (avail index ran ahead, head out of range, a head offered
     * again while the device still holds it): the device can make no progress and must set
     * DEVICE_NEEDS_RESET. */
    VIRTQ_POP_BROKEN_RING,
};

/* Puts a queue back to its reset state (size = max_size, addresses 0, not ready). */
void virtqueue_reset(struct virtqueue *vq, const struct guest_mem *mem, uint16_t max_size);

/* QueueReady = 1: checks the size (power of 2, 1..max_size) and that each ring lies inside
 * guest RAM with the alignment the spec requires, then caches host pointers.
 * Returns 0, or -EINVAL with a one-line reason in *why (a static string). */
int virtqueue_enable(struct virtqueue *vq, bool event_idx, bool indirect, const char **why);

/* Takes the next available chain. See enum virtq_pop_result; *why is set for the two
 * error results (a static string naming the problem, e.g. "descriptor loop"). */
enum virtq_pop_result virtqueue_pop(struct virtqueue *vq, struct virtq_chain *chain,
                                    const char **why);

/* Puts the last n popped chains back, unanswered, to be popped again later (a receive path
 * that found too few buffers for a packet). n must not exceed the chains popped since. */
void virtqueue_unpop(struct virtqueue *vq, uint16_t n);

/* Gives chain head back with len bytes written by the device; publishes used->idx. The head
 * is no longer busy: the driver may offer it again. */
void virtqueue_push(struct virtqueue *vq, uint16_t head, uint32_t len);

/* After one or more pushes: whether the driver wants an interrupt now (honours
 * VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX). Records the signal if so. */
bool virtqueue_should_interrupt(struct virtqueue *vq);

/* Doorbell suppression while the device works through the queue (virtio 1.2 §2.7.10): quiet
 * asks the driver not to notify (VRING_USED_F_NO_NOTIFY, or with EVENT_IDX an avail_event
 * left behind); wake asks for notifications again and returns true if chains arrived in
 * between, which the device must then take itself: no doorbell will come for them.
 *     do { virtqueue_quiet(vq); ...pop until empty... } while (virtqueue_wake(vq)); */
void virtqueue_quiet(struct virtqueue *vq);
bool virtqueue_wake(struct virtqueue *vq);

/* Chains popped and not yet pushed (never more than the queue size). */
static inline unsigned virtqueue_in_flight(const struct virtqueue *vq)
{
    return vq->busy_count;
}

/* True if the driver has made chains available that the device has not popped yet. */
bool virtqueue_has_available(const struct virtqueue *vq);

/* A queue's guest-visible state as plain values (for snapshots): what the driver set up and
 * where the device is in the rings. Fixed layout, no padding, no host pointers. */
struct virtqueue_state {
    uint64_t desc_gpa, avail_gpa, used_gpa;
    uint16_t size;
    uint16_t last_avail;
    uint16_t used_idx;
    uint16_t signalled;
    uint8_t ready;
    uint8_t event_idx;
    uint8_t indirect;
    uint8_t signalled_valid;
    uint8_t quiet;
    uint8_t pad[3];
};
_Static_assert(sizeof(struct virtqueue_state) == 40, "virtqueue_state has no padding");

void virtqueue_save(const struct virtqueue *vq, struct virtqueue_state *out);
/* Loads a saved state into a queue reset with the same max_size. A ready queue's rings are
 * checked and their host pointers recomputed as at QueueReady, but nothing in guest memory is
 * written (used->idx and flags are the guest's, restored with its RAM). Returns 0, or -EINVAL
 * with a static reason in *why (the queue is then left reset). */
int virtqueue_restore(struct virtqueue *vq, const struct virtqueue_state *in, const char **why);

#endif
