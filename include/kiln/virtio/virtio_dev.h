/* The transport-neutral half of a virtio device (virtio 1.2 §2-§3): status, feature
 * negotiation, queues and their one bad-chain policy; a device model embeds one. */
#ifndef KILN_VIRTIO_DEV_H
#define KILN_VIRTIO_DEV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/util/error.h"
#include "kiln/vm/guest_mem.h"
#include "kiln/util/log.h"
#include "kiln/virtio/virtqueue.h"

#define VIRTIO_MAX_QUEUES     8
#define VIRTIO_MAX_CONFIG     (0x1000 - 0x100) /* what fits a virtio-mmio register window */
#define VIRTIO_DEV_LABEL_SIZE 48

/* Why the device interrupts the driver; the values are virtio-mmio's InterruptStatus bits
 * and virtio-pci's ISR bits alike. */
enum virtio_interrupt {
    VIRTIO_INTERRUPT_VRING = 1,  /* used buffers in some queue */
    VIRTIO_INTERRUPT_CONFIG = 2, /* the config space or the status changed */
};

struct virtio_dev;

/* One queue's statistics, kiln's own (not guest-visible state, never in a snapshot): they only
 * grow, through resets and restores. Read them with virtio_dev_queue_counters. */
struct virtqueue_counters {
    uint64_t notifications; /* doorbells (and the loop's own re-kicks) handled while live */
    uint64_t chains;        /* well-formed chains popped (one put back and popped again: 2) */
    uint64_t used;          /* used entries pushed, bad chains' included */
    uint64_t interrupts;    /* queue interrupts raised, after the driver's suppression */
    uint64_t bad_chains;    /* chains given back unused by the one bad-chain policy */
};

/* What a device model implements. Every callback runs with the device's lock held: config
 * accesses and reset on vCPU threads, queue_notify on the event-loop thread. */
struct virtio_dev_ops {
    /* offset + size <= config_size (the core checked it). */
    void (*config_read)(struct virtio_dev *d, uint32_t offset, uint8_t *data, unsigned size);
    /* May be NULL: every config write is refused. */
    void (*config_write)(struct virtio_dev *d, uint32_t offset, const uint8_t *data, unsigned size);
    /* The driver set DRIVER_OK: driver_features is final, ready queues may be used. */
    void (*activate)(struct virtio_dev *d);
    /* Queue q has new buffers (it is ready and the device live). */
    void (*queue_notify)(struct virtio_dev *d, unsigned q);
    /* The driver reset the device: forget in-flight work; completions that come later are
     * dropped by comparing virtio_dev_generation(). Work that writes guest memory off the
     * loop thread must be cancelled or waited for here (as virtio-blk does with its work
     * gate), since the driver may reuse its buffers as soon as the reset is done. May be
     * NULL. */
    void (*reset)(struct virtio_dev *d);
};

/* The static description of a device model. */
struct virtio_device_info {
    const char *name;         /* "virtio-blk", for messages */
    uint32_t device_id;       /* VIRTIO_ID_* */
    uint64_t features;        /* device-specific bits offered; the core adds its own */
    unsigned num_queues;      /* 1..VIRTIO_MAX_QUEUES */
    uint16_t queue_max_size;  /* power of 2, <= VIRTQ_MAX_SIZE */
    uint32_t config_size;     /* bytes of device config space, <= VIRTIO_MAX_CONFIG */
    uint64_t max_chain_bytes; /* the longest chain its queues take; 0: VIRTQ_MAX_CHAIN_BYTES */
    const struct virtio_dev_ops *ops;
};

/* How the core reaches the transport it is bound to: interrupt the driver, and have the loop
 * look at queue q soon (as if its doorbell rang). Called with the device's lock held: they
 * must only signal, never call back into the device. */
struct virtio_transport {
    void (*interrupt)(void *opaque, enum virtio_interrupt why);
    void (*kick)(void *opaque, unsigned q);
    void *opaque;
};

struct virtio_dev {
    pthread_mutex_t lock;
    struct virtio_device_info info;
    const struct guest_mem *mem;
    const struct log *log;
    struct virtio_transport transport;
    char label[VIRTIO_DEV_LABEL_SIZE]; /* "virtio-blk at 0xd0000000", for messages */

    uint64_t device_features; /* info.features | the core's ring features */
    uint64_t driver_features; /* as the driver wrote them (final at FEATURES_OK) */
    bool driver_features_beyond_64;
    uint32_t status;
    uint32_t config_generation;
    uint32_t generation; /* bumped on every reset and QueueReady=0: drops stale completions */
    struct virtqueue queues[VIRTIO_MAX_QUEUES];

    /* A snapshot is reading guest RAM (virtio_dev_hold): the device takes no chain, so it
     * writes nothing there. Set and read with atomics. */
    bool held;
    bool error_logged;      /* the first malformed request is logged (virtio_dev_log_once) */
    uint64_t device_errors; /* every malformed request, logged or not (kiln/util/counter.h) */
    /* Bumped under the lock, read without it from any thread (kiln/util/counter.h). */
    struct virtqueue_counters queue_counters[VIRTIO_MAX_QUEUES];
};

/* Sets a device up in its reset state, not yet bound. -EINVAL (bad info) with err set. */
int virtio_dev_init(struct virtio_dev *d, const struct virtio_device_info *info,
                    const struct guest_mem *mem, const struct log *log, struct error *err);
/* Binds the device to its transport, once, when the transport is created. */
void virtio_dev_bind(struct virtio_dev *d, const struct virtio_transport *transport,
                     const char *label);
void virtio_dev_destroy(struct virtio_dev *d);

void virtio_dev_lock(struct virtio_dev *d);
void virtio_dev_unlock(struct virtio_dev *d);

/* Queue q's counters so far (all zero for a queue the device does not have). Any thread, no
 * lock: each value is read whole, the five not at one instant. */
void virtio_dev_queue_counters(const struct virtio_dev *d, unsigned q,
                               struct virtqueue_counters *out);
/* Every malformed request or driver misuse counted by virtio_dev_log_once. Any thread. */
uint64_t virtio_dev_error_count(const struct virtio_dev *d);

/* ---- For transports (lock held unless said otherwise) ---- */

/* Driver features, 32 bits a page. False when the driver may not write them now (outside
 * negotiation): the transport reports the misuse. */
bool virtio_dev_set_driver_features(struct virtio_dev *d, uint32_t page, uint32_t value);
/* A Status write (value 0 resets). Returns NULL, or what was wrong with it. */
const char *virtio_dev_set_status(struct virtio_dev *d, uint32_t value);
/* QueueReady for queue q (< num_queues). Returns NULL, or what was wrong with it. */
const char *virtio_dev_set_queue_ready(struct virtio_dev *d, unsigned q, bool ready);
/* Config space accesses; false if outside what the device has (the transport reports it). */
bool virtio_dev_config_read(struct virtio_dev *d, uint32_t offset, uint8_t *data, unsigned size);
bool virtio_dev_config_write(struct virtio_dev *d, uint32_t offset, const uint8_t *data,
                             unsigned size);
/* Queue q's doorbell rang (event-loop thread; takes the lock): runs queue_notify if the
 * device is live and the queue ready. */
void virtio_dev_handle_notify(struct virtio_dev *d, unsigned q);

/* ---- For device models (lock held) ---- */

bool virtio_dev_feature(const struct virtio_dev *d, unsigned bit); /* negotiated? */
/* DRIVER_OK and neither FAILED nor NEEDS_RESET: the only test of "may the device work". */
bool virtio_dev_live(const struct virtio_dev *d);
/* Live and queue q ready. */
bool virtio_dev_queue_live(const struct virtio_dev *d, unsigned q);
static inline uint32_t virtio_dev_generation(const struct virtio_dev *d)
{
    return d->generation;
}

/* The next well-formed chain of queue q. The one bad-chain policy of every kiln device:
 *  - a malformed chain (loop, buffer outside RAM, readable after writable, ...) is given back
 *    at once with a used length of 0, logged once per device and counted in device_errors
 *    (and *malformed if not NULL); the device goes on with the next chain;
 *  - a broken ring (avail index too far ahead, head out of range) sets DEVICE_NEEDS_RESET:
 *    nothing in it can be trusted any more.
 * Returns false when there is nothing (more) to take, or the device is held. */
bool virtio_dev_pop(struct virtio_dev *d, unsigned q, struct virtq_chain *chain,
                    uint64_t *malformed);
/* A well-formed chain the device cannot use (e.g. no writable buffer where it needs one):
 * the same policy, given back with length 0, logged once and counted. */
void virtio_dev_reject(struct virtio_dev *d, unsigned q, uint16_t head, const char *why);
/* Gives chain head back with len bytes written. */
void virtio_dev_push(struct virtio_dev *d, unsigned q, uint16_t head, uint32_t len);
/* After pushing used entries to queue q: interrupts the driver if the queue asks for it. */
void virtio_dev_notify_used(struct virtio_dev *d, unsigned q);

/* Doorbell suppression around a device's request loop (virtqueue_quiet/wake); wake is true
 * only for a device that is still live (and not held), so a broken ring never looks like work
 * forever:
 *     do { virtio_dev_quiet(d, q); ...virtio_dev_pop until false... }
 *     while (virtio_dev_wake(d, q)); */
void virtio_dev_quiet(struct virtio_dev *d, unsigned q);
bool virtio_dev_wake(struct virtio_dev *d, unsigned q);

/* Takes one well-formed chain of queue q (virtio_dev_drain's caller owns it until it pushes
 * chain->head, now or later) and returns true; or returns false when the device cannot take it
 * yet (a rate limit): it put the chain back with virtio_dev_unpop and will come back to the
 * queue itself (virtio_dev_kick), so the drain stops and leaves the queue quiet. */
typedef bool virtio_chain_handler(struct virtio_dev *d, unsigned q, struct virtq_chain *chain);

/* A device's request loop with a budget: takes up to `budget` chains of queue q through
 * virtio_dev_pop (malformed: as there) and hands each to take, with doorbells suppressed
 * meanwhile. If chains remain when the budget is spent, the queue stays quiet and is kicked,
 * so the loop comes back to it after its other handles had their turn: a guest that keeps
 * the queue full cannot hold the event loop. The caller then calls virtio_dev_notify_used.
 * Returns true if it stopped at the budget. */
bool virtio_dev_drain(struct virtio_dev *d, unsigned q, struct virtq_chain *chain, unsigned budget,
                      uint64_t *malformed, virtio_chain_handler *take);
/* Puts back the chain just popped from queue q, to be popped again later (counted again in
 * the queue's chains then). */
void virtio_dev_unpop(struct virtio_dev *d, unsigned q);
/* Has the loop look at queue q soon, as if its doorbell rang (any thread, lock held or not). */
void virtio_dev_kick(struct virtio_dev *d, unsigned q);

/* A snapshot's window (loop thread, vCPUs paused, no request in flight): from the moment the
 * devices' state is read until the writer has read guest RAM, a held device takes no chain
 * and writes nothing into guest RAM (its rings and buffers stay as the saved state says), so a
 * frame from the TAP, a console byte or a rate limit's timer cannot change RAM behind the
 * saved state. Whatever came meanwhile waits; release looks at every ready queue again. */
void virtio_dev_hold(struct virtio_dev *d);
void virtio_dev_release(struct virtio_dev *d);
bool virtio_dev_held(const struct virtio_dev *d);

/* The device config changed: bumps the config generation and interrupts the driver. */
void virtio_dev_config_changed(struct virtio_dev *d);
/* An error the device cannot recover from: sets DEVICE_NEEDS_RESET, interrupts, logs once. */
void virtio_dev_needs_reset(struct virtio_dev *d, const char *why);
/* Counts a device problem and logs the first one per device, with the device's label, so a
 * hostile guest cannot flood the log. */
void virtio_dev_log_once(struct virtio_dev *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- Snapshots (lock held) ---- */

/* The core's guest-visible state as plain values: what was offered and negotiated, the
 * status, and every queue. Not the generation or error counts, which are kiln's own. */
struct virtio_dev_state {
    uint64_t device_features; /* a restore into a device offering other bits is refused */
    uint64_t driver_features;
    uint32_t device_id;
    uint32_t status;
    uint32_t config_generation;
    uint8_t num_queues;
    uint8_t driver_features_beyond_64;
    uint8_t pad[2];
    struct virtqueue_state queues[VIRTIO_MAX_QUEUES];
};
_Static_assert(sizeof(struct virtio_dev_state) == 32 + 40 * VIRTIO_MAX_QUEUES,
               "virtio_dev_state has no padding");

void virtio_dev_save(const struct virtio_dev *d, struct virtio_dev_state *out);
/* Loads a saved state into a device built the same way (same model, features and queues),
 * checking every value; on failure the device is left reset and err says what was wrong.
 * A live device's ready queues are kicked once, so the model looks at its rings again. */
int virtio_dev_restore(struct virtio_dev *d, const struct virtio_dev_state *in, struct error *err);

/* For config_read callbacks: copies [offset, offset+size) of a device's config struct into
 * data (zeroes past its end). */
void virtio_dev_config_copy(const void *config, size_t config_size, uint32_t offset, uint8_t *data,
                            unsigned size);

#endif
