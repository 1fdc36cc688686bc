/* The virtio-mmio version 2 transport (virtio 1.2 §4.2): the register window a driver sees,
 * feature negotiation, the status machine and the queues; it knows nothing of blk or rng. */
#ifndef KILN_VIRTIO_MMIO_H
#define KILN_VIRTIO_MMIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "kiln/bus.h"
#include "kiln/guest_mem.h"
#include "kiln/log.h"
#include "kiln/virtio/virtqueue.h"

#define VIRTIO_MMIO_MAX_QUEUES  8
#define VIRTIO_MMIO_CONFIG_BASE 0x100      /* device-specific config space starts here */
#define KILN_VIRTIO_VENDOR_ID   0x4e4c494b /* "KILN" in little-endian ASCII */

struct virtio_mmio;

/* What a device model gives the transport. Every callback runs with the transport's lock
 * held: config accesses and reset on vCPU threads, queue_notify on the event-loop thread. */
struct virtio_device_ops {
    /* offset is within the device config space and offset + size <= config_size. */
    void (*config_read)(struct virtio_mmio *t, uint32_t offset, uint8_t *data, unsigned size);
    void (*config_write)(struct virtio_mmio *t, uint32_t offset, const uint8_t *data,
                         unsigned size);
    /* The driver set DRIVER_OK: t->driver_features is final, ready queues may be used. */
    void (*activate)(struct virtio_mmio *t);
    /* The driver kicked queue q (which is ready, and the device is DRIVER_OK). */
    void (*queue_notify)(struct virtio_mmio *t, unsigned q);
    /* The driver wrote 0 to Status: forget in-flight work (its completions must be dropped;
     * see virtio_mmio_generation()). May be NULL. */
    void (*reset)(struct virtio_mmio *t);
};

/* The static description of a device model. */
struct virtio_device_info {
    const char *name;        /* "virtio-blk", for messages */
    uint32_t device_id;      /* VIRTIO_ID_* */
    uint64_t features;       /* device-specific bits offered; the transport adds its own */
    unsigned num_queues;     /* <= VIRTIO_MMIO_MAX_QUEUES */
    uint16_t queue_max_size; /* power of 2, <= VIRTQ_MAX_SIZE */
    uint32_t config_size;    /* bytes of device config space */
    const struct virtio_device_ops *ops;
    void *opaque; /* the device model, for its callbacks: t->info.opaque */
};

/* How the transport reaches the outside world. In a VM: raise_irq writes the device's
 * irqfd; kick writes queue q's doorbell eventfd (used only when a QueueNotify write reaches
 * the bus instead of the ioeventfd). Both are called with the transport's lock held, so they
 * must only signal (never call back into the transport). Unit tests plug in recorders. */
struct virtio_mmio_host {
    void (*raise_irq)(void *opaque);
    void (*kick)(void *opaque, unsigned q);
    void *opaque;
};

struct virtio_mmio {
    pthread_mutex_t lock;
    struct virtio_device_info info;
    struct virtio_mmio_host host;
    const struct guest_mem *mem;
    const struct log *log;
    uint64_t base; /* guest-physical address of the register window, for messages */

    uint64_t device_features;       /* info.features | transport features */
    uint64_t driver_features;       /* accumulated from DriverFeatures writes */
    bool driver_features_beyond_64; /* a non-zero page >= 2: never acceptable */
    uint32_t device_features_sel, driver_features_sel;
    uint32_t queue_sel;
    uint32_t status;
    uint32_t interrupt_status; /* VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG */
    uint32_t config_generation;
    uint32_t generation; /* bumped on every device reset, for dropping stale completions */
    uint32_t shm_sel;
    struct virtqueue queues[VIRTIO_MMIO_MAX_QUEUES];
    bool bad_access_logged;   /* misuse of the register window is logged once per device */
    bool device_error_logged; /* so is the first malformed request (virtio_mmio_log_once) */
    uint64_t device_errors;   /* every malformed request, logged or not */
};

/* Sets up a transport in its reset state. Returns 0 or -EINVAL (bad info) with err set. */
int virtio_mmio_init(struct virtio_mmio *t, const struct virtio_device_info *info,
                     const struct virtio_mmio_host *host, const struct guest_mem *mem,
                     const struct log *log, uint64_t base, struct error *err);
void virtio_mmio_destroy(struct virtio_mmio *t);

/* Register window accessors for the MMIO bus (vCPU threads). */
extern const struct bus_ops virtio_mmio_bus_ops;

/* The doorbell for queue q fired (event-loop thread): takes the lock and, if the device is
 * live and the queue ready, calls ops->queue_notify. */
void virtio_mmio_handle_notify(struct virtio_mmio *t, unsigned q);

/* For device models (lock held): */
static inline void *virtio_mmio_device(struct virtio_mmio *t)
{
    return t->info.opaque;
}
static inline uint32_t virtio_mmio_generation(const struct virtio_mmio *t)
{
    return t->generation;
}
bool virtio_mmio_feature(const struct virtio_mmio *t, unsigned bit); /* negotiated? */
/* After pushing used entries to queue q: interrupts the guest if the queue asks for it. */
void virtio_mmio_notify_used(struct virtio_mmio *t, unsigned q);
/* The device config changed: bumps ConfigGeneration and raises a config interrupt. */
void virtio_mmio_config_changed(struct virtio_mmio *t);
/* The device hit an error it cannot recover from (a broken ring): sets DEVICE_NEEDS_RESET,
 * raises a config interrupt, and logs why once. */
void virtio_mmio_needs_reset(struct virtio_mmio *t, const char *why);
/* Counts a device problem (a malformed request) and logs the first one per device, with the
 * device name and address, so a hostile guest cannot flood the log. */
void virtio_mmio_log_once(struct virtio_mmio *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* virtqueue_wake for queue q of a device's request loop: true if chains arrived while the
 * queue was quiet and the device should go on; never for a device that needs a reset (its
 * broken ring would look like work forever). Lock held.
 *     do { virtqueue_quiet(vq); ...virtio_mmio_pop until false... }
 *     while (virtio_mmio_wake_queue(t, q)); */
bool virtio_mmio_wake_queue(struct virtio_mmio *t, unsigned q);

/* The next well-formed chain of queue q, for a device's request loop (lock held). A malformed
 * chain is given back with length 0, logged once and counted in *malformed (if not NULL); a
 * broken ring sets DEVICE_NEEDS_RESET. Returns false when there is nothing (more) to do. */
bool virtio_mmio_pop(struct virtio_mmio *t, unsigned q, struct virtq_chain *chain,
                     uint64_t *malformed);

/* For config_read callbacks: copies [offset, offset+size) of a device's config struct into
 * data (zeroes past its end; the transport already bounds the access by config_size). */
void virtio_mmio_config_copy(const void *config, size_t config_size, uint32_t offset, uint8_t *data,
                             unsigned size);

void virtio_mmio_lock(struct virtio_mmio *t);
void virtio_mmio_unlock(struct virtio_mmio *t);

#endif
