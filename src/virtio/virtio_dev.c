/* Virtio layer 2 of 4, the device core: status, feature negotiation, queue enabling, the one
 * bad-chain policy and interrupts, for every device model on any transport. No KVM, no MMIO. */
#include <errno.h>
#include <linux/virtio_config.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kiln/util/counter.h"
#include "kiln/virtio/virtio_dev.h"

/* Ring features every kiln device offers, whatever its model. */
#define CORE_FEATURES                                                                              \
    ((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_RING_F_INDIRECT_DESC) |                        \
     (1ULL << VIRTIO_RING_F_EVENT_IDX))

static void reset_state(struct virtio_dev *d)
{
    d->driver_features = 0;
    d->driver_features_beyond_64 = false;
    d->status = 0;
    d->generation++;
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
        virtqueue_reset(&d->queues[q], d->mem, q < d->info.num_queues ? d->info.queue_max_size : 0);
        if (d->info.max_chain_bytes)
            d->queues[q].max_chain_bytes = d->info.max_chain_bytes;
    }
}

static void no_interrupt(void *opaque, enum virtio_interrupt why)
{
}

static void no_kick(void *opaque, unsigned q)
{
}

int virtio_dev_init(struct virtio_dev *d, const struct virtio_device_info *info,
                    const struct guest_mem *mem, const struct log *log, struct error *err)
{
    memset(d, 0, sizeof(*d));
    if (info->num_queues == 0 || info->num_queues > VIRTIO_MAX_QUEUES ||
        info->queue_max_size == 0 || info->queue_max_size > VIRTQ_MAX_SIZE ||
        (info->queue_max_size & (info->queue_max_size - 1)) ||
        info->config_size > VIRTIO_MAX_CONFIG)
        return error_fmt(err, -EINVAL, "%s: invalid device description (queues or config size)",
                         info->name);
    d->info = *info;
    d->mem = mem;
    d->log = log;
    d->transport = (struct virtio_transport){.interrupt = no_interrupt, .kick = no_kick};
    snprintf(d->label, sizeof(d->label), "%s", info->name);
    d->device_features = info->features | CORE_FEATURES;
    pthread_mutex_init(&d->lock, NULL);
    reset_state(d);
    d->generation = 0;
    return 0;
}

void virtio_dev_bind(struct virtio_dev *d, const struct virtio_transport *transport,
                     const char *label)
{
    d->transport = *transport;
    snprintf(d->label, sizeof(d->label), "%s", label);
}

void virtio_dev_destroy(struct virtio_dev *d)
{
    pthread_mutex_destroy(&d->lock);
}

void virtio_dev_lock(struct virtio_dev *d)
{
    pthread_mutex_lock(&d->lock);
}

void virtio_dev_unlock(struct virtio_dev *d)
{
    pthread_mutex_unlock(&d->lock);
}

void virtio_dev_queue_counters(const struct virtio_dev *d, unsigned q,
                               struct virtqueue_counters *out)
{
    memset(out, 0, sizeof(*out));
    if (q >= d->info.num_queues)
        return;
    const struct virtqueue_counters *c = &d->queue_counters[q];
    out->notifications = counter_read(&c->notifications);
    out->chains = counter_read(&c->chains);
    out->used = counter_read(&c->used);
    out->interrupts = counter_read(&c->interrupts);
    out->bad_chains = counter_read(&c->bad_chains);
}

uint64_t virtio_dev_error_count(const struct virtio_dev *d)
{
    return counter_read(&d->device_errors);
}

void virtio_dev_log_once(struct virtio_dev *d, const char *fmt, ...)
{
    counter_add(&d->device_errors, 1);
    if (d->error_logged)
        return;
    d->error_logged = true;
    char message[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    log_warn(d->log, "%s: %s (further errors are counted, not logged)", d->label, message);
}

static void interrupt(struct virtio_dev *d, enum virtio_interrupt why)
{
    d->transport.interrupt(d->transport.opaque, why);
}

/* ---- Transport side ---- */

bool virtio_dev_set_driver_features(struct virtio_dev *d, uint32_t page, uint32_t value)
{
    bool negotiating =
        (d->status & VIRTIO_CONFIG_S_DRIVER) && !(d->status & VIRTIO_CONFIG_S_FEATURES_OK);
    if (!negotiating)
        return false;
    if (page > 1) {
        /* We offer nothing past bit 63: zeros are fine, anything else fails FEATURES_OK. */
        if (value)
            d->driver_features_beyond_64 = true;
    } else if (page == 0) {
        d->driver_features = (d->driver_features & ~0xffffffffULL) | value;
    } else {
        d->driver_features = (d->driver_features & 0xffffffffULL) | (uint64_t)value << 32;
    }
    return true;
}

/* FEATURES_OK is accepted only for a subset of what we offer that includes VERSION_1 (we
 * offer no legacy interface); otherwise the bit stays clear and the driver sees it failed. */
static bool features_acceptable(const struct virtio_dev *d)
{
    return !d->driver_features_beyond_64 && (d->driver_features & ~d->device_features) == 0 &&
           (d->driver_features & (1ULL << VIRTIO_F_VERSION_1));
}

static void reset_device(struct virtio_dev *d)
{
    if (d->info.ops->reset)
        d->info.ops->reset(d);
    reset_state(d);
}

const char *virtio_dev_set_status(struct virtio_dev *d, uint32_t value)
{
    if (value == 0) {
        reset_device(d);
        return NULL;
    }
    /* Drivers only add bits until they reset; the device alone sets NEEDS_RESET. */
    if (d->status & ~value & ~VIRTIO_CONFIG_S_NEEDS_RESET)
        return "status write clears bits without a reset";
    const char *complaint = NULL;
    uint32_t added = value & ~d->status & ~VIRTIO_CONFIG_S_NEEDS_RESET;
    if ((added & VIRTIO_CONFIG_S_FEATURES_OK) && !features_acceptable(d))
        added &= ~VIRTIO_CONFIG_S_FEATURES_OK;
    if ((added & VIRTIO_CONFIG_S_DRIVER_OK) &&
        !((d->status | added) & VIRTIO_CONFIG_S_FEATURES_OK)) {
        complaint = "DRIVER_OK before FEATURES_OK";
        added &= ~VIRTIO_CONFIG_S_DRIVER_OK;
    }
    d->status |= added;
    if (added & VIRTIO_CONFIG_S_DRIVER_OK) {
        if (d->info.ops->activate)
            d->info.ops->activate(d);
        /* Buffers made available before DRIVER_OK (e.g. receive buffers) were kicked while
         * the device was not live: let the loop look at every ready queue once. */
        for (unsigned q = 0; q < d->info.num_queues; q++)
            if (d->queues[q].ready)
                d->transport.kick(d->transport.opaque, q);
    }
    return complaint;
}

const char *virtio_dev_set_queue_ready(struct virtio_dev *d, unsigned q, bool ready)
{
    struct virtqueue *vq = &d->queues[q];
    if (!ready) {
        /* Completions still in flight (a block request on the thread pool) belong to the queue
         * as it was: were the driver to enable it again before they come back, they would land
         * in a ring that never gave out their buffers. A new generation drops them, as a
         * reset does; the other queues' few in-flight completions are dropped with them. */
        if (vq->ready)
            d->generation++;
        vq->ready = false;
        return NULL;
    }
    if (vq->ready)
        return NULL;
    if (!(d->status & VIRTIO_CONFIG_S_FEATURES_OK))
        return "QueueReady before FEATURES_OK";
    const char *why = NULL;
    bool event_idx = virtio_dev_feature(d, VIRTIO_RING_F_EVENT_IDX);
    bool indirect = virtio_dev_feature(d, VIRTIO_RING_F_INDIRECT_DESC);
    if (virtqueue_enable(vq, event_idx, indirect, &why) < 0)
        virtio_dev_needs_reset(d, why);
    return NULL;
}

static bool config_in_range(const struct virtio_dev *d, uint32_t offset, unsigned size)
{
    return (uint64_t)offset + size <= d->info.config_size;
}

bool virtio_dev_config_read(struct virtio_dev *d, uint32_t offset, uint8_t *data, unsigned size)
{
    memset(data, 0, size);
    if (!config_in_range(d, offset, size))
        return false;
    d->info.ops->config_read(d, offset, data, size);
    return true;
}

bool virtio_dev_config_write(struct virtio_dev *d, uint32_t offset, const uint8_t *data,
                             unsigned size)
{
    if (!config_in_range(d, offset, size) || !d->info.ops->config_write)
        return false;
    d->info.ops->config_write(d, offset, data, size);
    return true;
}

void virtio_dev_handle_notify(struct virtio_dev *d, unsigned q)
{
    virtio_dev_lock(d);
    if (virtio_dev_queue_live(d, q)) {
        counter_add(&d->queue_counters[q].notifications, 1);
        d->info.ops->queue_notify(d, q);
    }
    virtio_dev_unlock(d);
}

/* ---- Device side ---- */

bool virtio_dev_feature(const struct virtio_dev *d, unsigned bit)
{
    return bit < 64 && (d->driver_features >> bit) & 1;
}

bool virtio_dev_live(const struct virtio_dev *d)
{
    return (d->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
           !(d->status & (VIRTIO_CONFIG_S_FAILED | VIRTIO_CONFIG_S_NEEDS_RESET));
}

bool virtio_dev_queue_live(const struct virtio_dev *d, unsigned q)
{
    return q < d->info.num_queues && virtio_dev_live(d) && d->queues[q].ready;
}

void virtio_dev_reject(struct virtio_dev *d, unsigned q, uint16_t head, const char *why)
{
    virtio_dev_log_once(d, "bad descriptor chain in queue %u: %s", q, why);
    counter_add(&d->queue_counters[q].bad_chains, 1);
    virtio_dev_push(d, q, head, 0);
}

bool virtio_dev_pop(struct virtio_dev *d, unsigned q, struct virtq_chain *chain,
                    uint64_t *malformed)
{
    struct virtqueue *vq = &d->queues[q];
    const char *why = NULL;
    if (!virtio_dev_queue_live(d, q) || virtio_dev_held(d))
        return false;
    for (;;) {
        enum virtq_pop_result r = virtqueue_pop(vq, chain, &why);
        if (r == VIRTQ_POP_CHAIN) {
            counter_add(&d->queue_counters[q].chains, 1);
            return true;
        }
        if (r == VIRTQ_POP_EMPTY)
            return false;
        if (r == VIRTQ_POP_BROKEN_RING) {
            virtio_dev_needs_reset(d, why);
            return false;
        }
        virtio_dev_reject(d, q, chain->head, why);
        if (malformed)
            counter_add(malformed, 1); /* may be a device's counter, read from other threads */
    }
}

void virtio_dev_push(struct virtio_dev *d, unsigned q, uint16_t head, uint32_t len)
{
    virtqueue_push(&d->queues[q], head, len);
    counter_add(&d->queue_counters[q].used, 1);
}

void virtio_dev_notify_used(struct virtio_dev *d, unsigned q)
{
    if (q < d->info.num_queues && virtqueue_should_interrupt(&d->queues[q])) {
        counter_add(&d->queue_counters[q].interrupts, 1);
        interrupt(d, VIRTIO_INTERRUPT_VRING);
    }
}

/* Both write the used ring's flags or avail_event: not while held. */
void virtio_dev_quiet(struct virtio_dev *d, unsigned q)
{
    if (!virtio_dev_held(d))
        virtqueue_quiet(&d->queues[q]);
}

bool virtio_dev_wake(struct virtio_dev *d, unsigned q)
{
    if (virtio_dev_held(d))
        return false; /* virtio_dev_release kicks the queue */
    bool more = virtqueue_wake(&d->queues[q]);
    return more && virtio_dev_live(d);
}

bool virtio_dev_held(const struct virtio_dev *d)
{
    return __atomic_load_n(&d->held, __ATOMIC_ACQUIRE);
}

void virtio_dev_hold(struct virtio_dev *d)
{
    virtio_dev_lock(d);
    __atomic_store_n(&d->held, true, __ATOMIC_RELEASE);
    virtio_dev_unlock(d);
}

void virtio_dev_release(struct virtio_dev *d)
{
    virtio_dev_lock(d);
    bool was_held = d->held;
    __atomic_store_n(&d->held, false, __ATOMIC_RELEASE);
    /* Doorbells, frames and timers that came while held found nothing to take: look again. */
    if (was_held && virtio_dev_live(d))
        for (unsigned q = 0; q < d->info.num_queues; q++)
            if (d->queues[q].ready)
                d->transport.kick(d->transport.opaque, q);
    virtio_dev_unlock(d);
}

bool virtio_dev_drain(struct virtio_dev *d, unsigned q, struct virtq_chain *chain, unsigned budget,
                      uint64_t *malformed, virtio_chain_handler *take)
{
    unsigned taken = 0;
    do {
        virtio_dev_quiet(d, q);
        while (taken < budget && virtio_dev_pop(d, q, chain, malformed)) {
            if (!take(d, q, chain))
                return false; /* the device waits (a rate limit) and kicks the queue itself */
            taken++;
        }
        if (taken == budget && virtio_dev_live(d) && virtqueue_has_available(&d->queues[q])) {
            /* Staying quiet is safe: this kick brings the loop back whatever the driver does. */
            d->transport.kick(d->transport.opaque, q);
            return true;
        }
    } while (virtio_dev_wake(d, q));
    return false;
}

void virtio_dev_unpop(struct virtio_dev *d, unsigned q)
{
    virtqueue_unpop(&d->queues[q], 1);
}

void virtio_dev_kick(struct virtio_dev *d, unsigned q)
{
    d->transport.kick(d->transport.opaque, q);
}

void virtio_dev_config_changed(struct virtio_dev *d)
{
    d->config_generation++;
    if (d->status & VIRTIO_CONFIG_S_DRIVER_OK)
        interrupt(d, VIRTIO_INTERRUPT_CONFIG);
}

void virtio_dev_needs_reset(struct virtio_dev *d, const char *why)
{
    virtio_dev_log_once(d, "%s; the device needs a reset", why);
    if (d->status & VIRTIO_CONFIG_S_NEEDS_RESET)
        return;
    d->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
    if (d->status & VIRTIO_CONFIG_S_DRIVER_OK)
        interrupt(d, VIRTIO_INTERRUPT_CONFIG);
}

void virtio_dev_config_copy(const void *config, size_t config_size, uint32_t offset, uint8_t *data,
                            unsigned size)
{
    memset(data, 0, size);
    if (offset < config_size)
        memcpy(data, (const uint8_t *)config + offset,
               size < config_size - offset ? size : config_size - offset);
}

/* ---- Snapshots ---- */

void virtio_dev_save(const struct virtio_dev *d, struct virtio_dev_state *out)
{
    memset(out, 0, sizeof(*out));
    out->device_features = d->device_features;
    out->driver_features = d->driver_features;
    out->device_id = d->info.device_id;
    out->status = d->status;
    out->config_generation = d->config_generation;
    out->num_queues = (uint8_t)d->info.num_queues;
    out->driver_features_beyond_64 = d->driver_features_beyond_64;
    for (unsigned q = 0; q < d->info.num_queues; q++)
        virtqueue_save(&d->queues[q], &out->queues[q]);
}

#define KNOWN_STATUS                                                                               \
    (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK |            \
     VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_NEEDS_RESET | VIRTIO_CONFIG_S_FAILED)

static int check_state(const struct virtio_dev *d, const struct virtio_dev_state *in,
                       struct error *err)
{
    if (in->device_id != d->info.device_id || in->num_queues != d->info.num_queues)
        return error_fmt(err, -EINVAL,
                         "%s: saved state is of device id %u with %u queues (expected id %u "
                         "with %u)",
                         d->label, in->device_id, in->num_queues, d->info.device_id,
                         d->info.num_queues);
    if (in->device_features != d->device_features)
        return error_fmt(err, -EINVAL,
                         "%s: saved state offered features 0x%llx (expected 0x%llx: is the "
                         "device configured the same way?)",
                         d->label, (unsigned long long)in->device_features,
                         (unsigned long long)d->device_features);
    if (in->driver_features & ~in->device_features)
        return error_fmt(err, -EINVAL, "%s: saved driver features 0x%llx were never offered",
                         d->label, (unsigned long long)in->driver_features);
    if (in->status & ~KNOWN_STATUS)
        return error_fmt(err, -EINVAL, "%s: saved status 0x%x has unknown bits", d->label,
                         in->status);
    for (unsigned q = in->num_queues; q < VIRTIO_MAX_QUEUES; q++)
        if (in->queues[q].ready)
            return error_fmt(err, -EINVAL, "%s: saved queue %u is ready but does not exist",
                             d->label, q);
    return 0;
}

int virtio_dev_restore(struct virtio_dev *d, const struct virtio_dev_state *in, struct error *err)
{
    int r = check_state(d, in, err);
    if (r < 0)
        return r;
    reset_state(d);
    for (unsigned q = 0; q < d->info.num_queues; q++) {
        const char *why = NULL;
        if (virtqueue_restore(&d->queues[q], &in->queues[q], &why) < 0) {
            reset_state(d);
            return error_fmt(err, -EINVAL, "%s: saved queue %u: %s", d->label, q, why);
        }
    }
    d->driver_features = in->driver_features;
    d->driver_features_beyond_64 = in->driver_features_beyond_64 != 0;
    d->status = in->status;
    d->config_generation = in->config_generation;
    if (virtio_dev_live(d))
        for (unsigned q = 0; q < d->info.num_queues; q++)
            if (d->queues[q].ready)
                d->transport.kick(d->transport.opaque, q);
    return 0;
}
