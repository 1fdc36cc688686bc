/* The virtio-mmio version 2 register window: feature pages, the status state machine, queue
 * set-up and interrupt status, dispatched to a device model through its ops table. */
#include <errno.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kiln/virtio/virtio_mmio.h"

#define VIRTIO_MMIO_MAGIC       0x74726976 /* "virt" */
#define VIRTIO_MMIO_VERSION_2   2
#define VIRTIO_MMIO_QUEUE_RESET 0x0c0 /* virtio 1.2 §4.2.2; not in every UAPI header yet */
#define VIRTIO_MMIO_NO_SHM      0xffffffffu

/* Features every device on this transport offers. */
#define TRANSPORT_FEATURES                                                                         \
    ((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_RING_F_INDIRECT_DESC) |                        \
     (1ULL << VIRTIO_RING_F_EVENT_IDX))

static void log_bad_access(struct virtio_mmio *t, const char *what, uint64_t offset, unsigned size)
{
    if (t->bad_access_logged)
        return;
    t->bad_access_logged = true;
    log_warn(t->log, "%s at 0x%llx: %s (offset 0x%llx, %u bytes); ignored, further ones too",
             t->info.name, (unsigned long long)t->base, what, (unsigned long long)offset, size);
}

void virtio_mmio_log_once(struct virtio_mmio *t, const char *fmt, ...)
{
    t->device_errors++;
    if (t->device_error_logged)
        return;
    t->device_error_logged = true;
    char message[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    log_warn(t->log, "%s at 0x%llx: %s (further errors are counted, not logged)", t->info.name,
             (unsigned long long)t->base, message);
}

static void reset_device_state(struct virtio_mmio *t)
{
    t->driver_features = 0;
    t->driver_features_beyond_64 = false;
    t->device_features_sel = 0;
    t->driver_features_sel = 0;
    t->queue_sel = 0;
    t->status = 0;
    t->interrupt_status = 0;
    t->shm_sel = 0;
    t->generation++;
    for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++)
        virtqueue_reset(&t->queues[q], t->mem, q < t->info.num_queues ? t->info.queue_max_size : 0);
}

int virtio_mmio_init(struct virtio_mmio *t, const struct virtio_device_info *info,
                     const struct virtio_mmio_host *host, const struct guest_mem *mem,
                     const struct log *log, uint64_t base, struct error *err)
{
    memset(t, 0, sizeof(*t));
    if (info->num_queues == 0 || info->num_queues > VIRTIO_MMIO_MAX_QUEUES ||
        info->queue_max_size == 0 || info->queue_max_size > VIRTQ_MAX_SIZE ||
        (info->queue_max_size & (info->queue_max_size - 1)) ||
        info->config_size > 0x1000 - VIRTIO_MMIO_CONFIG_BASE)
        return error_fmt(err, -EINVAL, "%s: invalid device description (queues or config size)",
                         info->name);
    t->info = *info;
    t->host = *host;
    t->mem = mem;
    t->log = log;
    t->base = base;
    t->device_features = info->features | TRANSPORT_FEATURES;
    pthread_mutex_init(&t->lock, NULL);
    reset_device_state(t);
    t->generation = 0;
    return 0;
}

void virtio_mmio_destroy(struct virtio_mmio *t)
{
    pthread_mutex_destroy(&t->lock);
}

bool virtio_mmio_pop(struct virtio_mmio *t, unsigned q, struct virtq_chain *chain,
                     uint64_t *malformed)
{
    struct virtqueue *vq = &t->queues[q];
    const char *why = NULL;
    for (;;) {
        enum virtq_pop_result r = virtqueue_pop(vq, chain, &why);
        if (r == VIRTQ_POP_CHAIN)
            return true;
        if (r == VIRTQ_POP_EMPTY)
            return false;
        if (r == VIRTQ_POP_BROKEN_RING) {
            virtio_mmio_needs_reset(t, why);
            return false;
        }
        virtio_mmio_log_once(t, "bad descriptor chain in queue %u: %s", q, why);
        virtqueue_push(vq, chain->head, 0);
        if (malformed)
            (*malformed)++;
    }
}

bool virtio_mmio_wake_queue(struct virtio_mmio *t, unsigned q)
{
    bool more = virtqueue_wake(&t->queues[q]);
    return more && !(t->status & (VIRTIO_CONFIG_S_NEEDS_RESET | VIRTIO_CONFIG_S_FAILED));
}

void virtio_mmio_config_copy(const void *config, size_t config_size, uint32_t offset, uint8_t *data,
                             unsigned size)
{
    memset(data, 0, size);
    if (offset < config_size)
        memcpy(data, (const uint8_t *)config + offset,
               size < config_size - offset ? size : config_size - offset);
}

void virtio_mmio_lock(struct virtio_mmio *t)
{
    pthread_mutex_lock(&t->lock);
}
void virtio_mmio_unlock(struct virtio_mmio *t)
{
    pthread_mutex_unlock(&t->lock);
}

bool virtio_mmio_feature(const struct virtio_mmio *t, unsigned bit)
{
    return bit < 64 && (t->driver_features >> bit) & 1;
}

static void raise_interrupt(struct virtio_mmio *t, uint32_t cause)
{
    t->interrupt_status |= cause;
    t->host.raise_irq(t->host.opaque);
}

void virtio_mmio_notify_used(struct virtio_mmio *t, unsigned q)
{
    if (q < t->info.num_queues && virtqueue_should_interrupt(&t->queues[q]))
        raise_interrupt(t, VIRTIO_MMIO_INT_VRING);
}

void virtio_mmio_config_changed(struct virtio_mmio *t)
{
    t->config_generation++;
    if (t->status & VIRTIO_CONFIG_S_DRIVER_OK)
        raise_interrupt(t, VIRTIO_MMIO_INT_CONFIG);
}

void virtio_mmio_needs_reset(struct virtio_mmio *t, const char *why)
{
    virtio_mmio_log_once(t, "%s; the device needs a reset", why);
    if (t->status & VIRTIO_CONFIG_S_NEEDS_RESET)
        return;
    t->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
    if (t->status & VIRTIO_CONFIG_S_DRIVER_OK)
        raise_interrupt(t, VIRTIO_MMIO_INT_CONFIG);
}

static bool device_live(const struct virtio_mmio *t)
{
    return (t->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
           !(t->status & (VIRTIO_CONFIG_S_FAILED | VIRTIO_CONFIG_S_NEEDS_RESET));
}

void virtio_mmio_handle_notify(struct virtio_mmio *t, unsigned q)
{
    virtio_mmio_lock(t);
    if (q < t->info.num_queues && device_live(t) && t->queues[q].ready)
        t->info.ops->queue_notify(t, q);
    virtio_mmio_unlock(t);
}

static struct virtqueue *selected_queue(struct virtio_mmio *t)
{
    return t->queue_sel < t->info.num_queues ? &t->queues[t->queue_sel] : NULL;
}

static uint32_t feature_page(uint64_t features, uint32_t sel)
{
    return sel == 0 ? (uint32_t)features : sel == 1 ? (uint32_t)(features >> 32) : 0;
}

static uint32_t read_register(struct virtio_mmio *t, uint64_t offset)
{
    struct virtqueue *vq = selected_queue(t);
    switch (offset) {
    case VIRTIO_MMIO_MAGIC_VALUE:
        return VIRTIO_MMIO_MAGIC;
    case VIRTIO_MMIO_VERSION:
        return VIRTIO_MMIO_VERSION_2;
    case VIRTIO_MMIO_DEVICE_ID:
        return t->info.device_id;
    case VIRTIO_MMIO_VENDOR_ID:
        return KILN_VIRTIO_VENDOR_ID;
    case VIRTIO_MMIO_DEVICE_FEATURES:
        return feature_page(t->device_features, t->device_features_sel);
    case VIRTIO_MMIO_QUEUE_NUM_MAX:
        return vq ? vq->max_size : 0;
    case VIRTIO_MMIO_QUEUE_READY:
        return vq ? vq->ready : 0;
    case VIRTIO_MMIO_INTERRUPT_STATUS:
        return t->interrupt_status;
    case VIRTIO_MMIO_STATUS:
        return t->status;
    case VIRTIO_MMIO_SHM_LEN_LOW:
    case VIRTIO_MMIO_SHM_LEN_HIGH:
    case VIRTIO_MMIO_SHM_BASE_LOW:
    case VIRTIO_MMIO_SHM_BASE_HIGH:
        return VIRTIO_MMIO_NO_SHM; /* no shared memory regions: length -1 for every id */
    case VIRTIO_MMIO_QUEUE_RESET:
        return 0;
    case VIRTIO_MMIO_CONFIG_GENERATION:
        return t->config_generation;
    default:
        log_bad_access(t, "read of a write-only or unknown register", offset, 4);
        return 0;
    }
}

/* FEATURES_OK is accepted only for a subset of what we offer that includes VERSION_1 (we
 * offer no legacy interface); otherwise the bit stays clear and the driver sees it failed. */
static bool features_acceptable(const struct virtio_mmio *t)
{
    return !t->driver_features_beyond_64 && (t->driver_features & ~t->device_features) == 0 &&
           (t->driver_features & (1ULL << VIRTIO_F_VERSION_1));
}

static void reset_device(struct virtio_mmio *t)
{
    if (t->info.ops->reset)
        t->info.ops->reset(t);
    reset_device_state(t);
}

static void write_status(struct virtio_mmio *t, uint32_t value)
{
    if (value == 0) {
        reset_device(t);
        return;
    }
    /* Drivers only add bits until they reset; the device alone sets NEEDS_RESET. */
    if (t->status & ~value & ~VIRTIO_CONFIG_S_NEEDS_RESET) {
        log_bad_access(t, "status write clears bits without a reset", VIRTIO_MMIO_STATUS, 4);
        return;
    }
    uint32_t added = value & ~t->status & ~VIRTIO_CONFIG_S_NEEDS_RESET;
    if ((added & VIRTIO_CONFIG_S_FEATURES_OK) && !features_acceptable(t))
        added &= ~VIRTIO_CONFIG_S_FEATURES_OK;
    if ((added & VIRTIO_CONFIG_S_DRIVER_OK) &&
        !((t->status | added) & VIRTIO_CONFIG_S_FEATURES_OK)) {
        log_bad_access(t, "DRIVER_OK before FEATURES_OK", VIRTIO_MMIO_STATUS, 4);
        added &= ~VIRTIO_CONFIG_S_DRIVER_OK;
    }
    t->status |= added;
    if (added & VIRTIO_CONFIG_S_DRIVER_OK) {
        if (t->info.ops->activate)
            t->info.ops->activate(t);
        /* Buffers made available before DRIVER_OK (e.g. receive buffers) were kicked while
         * the device was not live: let the loop look at every ready queue once. */
        for (unsigned q = 0; q < t->info.num_queues; q++)
            if (t->queues[q].ready)
                t->host.kick(t->host.opaque, q);
    }
}

static void write_queue_ready(struct virtio_mmio *t, struct virtqueue *vq, uint32_t value)
{
    if (value == 0) {
        vq->ready = false;
        return;
    }
    if (vq->ready)
        return;
    if (!(t->status & VIRTIO_CONFIG_S_FEATURES_OK)) {
        log_bad_access(t, "QueueReady before FEATURES_OK", VIRTIO_MMIO_QUEUE_READY, 4);
        return;
    }
    const char *why = NULL;
    bool event_idx = virtio_mmio_feature(t, VIRTIO_RING_F_EVENT_IDX);
    bool indirect = virtio_mmio_feature(t, VIRTIO_RING_F_INDIRECT_DESC);
    if (virtqueue_enable(vq, event_idx, indirect, &why) < 0)
        virtio_mmio_needs_reset(t, why);
}

static void set_low(uint64_t *field, uint32_t value)
{
    *field = (*field & ~0xffffffffULL) | value;
}

static void set_high(uint64_t *field, uint32_t value)
{
    *field = (*field & 0xffffffffULL) | (uint64_t)value << 32;
}

/* Queue registers that only mean something while the queue is not ready. */
static void write_queue_setup(struct virtio_mmio *t, struct virtqueue *vq, uint64_t offset,
                              uint32_t value)
{
    if (!vq || vq->ready) {
        log_bad_access(t, vq ? "queue set-up while the queue is ready" : "no such queue", offset,
                       4);
        return;
    }
    switch (offset) {
    case VIRTIO_MMIO_QUEUE_NUM:
        vq->size = (uint16_t)(value > 0xffff ? 0 : value); /* checked at QueueReady */
        break;
    case VIRTIO_MMIO_QUEUE_DESC_LOW:
        set_low(&vq->desc_gpa, value);
        break;
    case VIRTIO_MMIO_QUEUE_DESC_HIGH:
        set_high(&vq->desc_gpa, value);
        break;
    case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
        set_low(&vq->avail_gpa, value);
        break;
    case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
        set_high(&vq->avail_gpa, value);
        break;
    case VIRTIO_MMIO_QUEUE_USED_LOW:
        set_low(&vq->used_gpa, value);
        break;
    case VIRTIO_MMIO_QUEUE_USED_HIGH:
        set_high(&vq->used_gpa, value);
        break;
    }
}

static void write_driver_features(struct virtio_mmio *t, uint32_t value)
{
    bool negotiating =
        (t->status & VIRTIO_CONFIG_S_DRIVER) && !(t->status & VIRTIO_CONFIG_S_FEATURES_OK);
    if (!negotiating) {
        log_bad_access(t, "DriverFeatures written outside feature negotiation",
                       VIRTIO_MMIO_DRIVER_FEATURES, 4);
        return;
    }
    if (t->driver_features_sel > 1) {
        /* We offer nothing past bit 63: zeros are fine, anything else fails FEATURES_OK. */
        if (value)
            t->driver_features_beyond_64 = true;
        return;
    }
    if (t->driver_features_sel == 0)
        set_low(&t->driver_features, value);
    else
        set_high(&t->driver_features, value);
}

static void write_register(struct virtio_mmio *t, uint64_t offset, uint32_t value)
{
    struct virtqueue *vq = selected_queue(t);
    switch (offset) {
    case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
        t->device_features_sel = value;
        break;
    case VIRTIO_MMIO_DRIVER_FEATURES:
        write_driver_features(t, value);
        break;
    case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
        t->driver_features_sel = value;
        break;
    case VIRTIO_MMIO_QUEUE_SEL:
        t->queue_sel = value;
        break;
    case VIRTIO_MMIO_QUEUE_NUM:
    case VIRTIO_MMIO_QUEUE_DESC_LOW:
    case VIRTIO_MMIO_QUEUE_DESC_HIGH:
    case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
    case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
    case VIRTIO_MMIO_QUEUE_USED_LOW:
    case VIRTIO_MMIO_QUEUE_USED_HIGH:
        write_queue_setup(t, vq, offset, value);
        break;
    case VIRTIO_MMIO_QUEUE_READY:
        if (vq)
            write_queue_ready(t, vq, value);
        else
            log_bad_access(t, "QueueReady for a queue that does not exist", offset, 4);
        break;
    case VIRTIO_MMIO_QUEUE_NOTIFY:
        /* Only reached when the ioeventfd did not catch the write (unit tests, or a write
         * that did not match any queue's datamatch). */
        if (value < t->info.num_queues)
            t->host.kick(t->host.opaque, value);
        else
            log_bad_access(t, "QueueNotify for a queue that does not exist", offset, 4);
        break;
    case VIRTIO_MMIO_INTERRUPT_ACK:
        t->interrupt_status &= ~value;
        break;
    case VIRTIO_MMIO_STATUS:
        write_status(t, value);
        break;
    case VIRTIO_MMIO_SHM_SEL:
        t->shm_sel = value;
        break;
    default:
        log_bad_access(t, "write to a read-only or unknown register", offset, 4);
        break;
    }
}

static bool config_access_ok(const struct virtio_mmio *t, uint64_t offset, unsigned size)
{
    return offset >= VIRTIO_MMIO_CONFIG_BASE &&
           offset - VIRTIO_MMIO_CONFIG_BASE + size <= t->info.config_size;
}

static void mmio_read(void *opaque, uint64_t offset, uint8_t *data, unsigned size)
{
    struct virtio_mmio *t = opaque;
    memset(data, 0, size);
    virtio_mmio_lock(t);
    if (offset >= VIRTIO_MMIO_CONFIG_BASE) {
        if (config_access_ok(t, offset, size))
            t->info.ops->config_read(t, (uint32_t)(offset - VIRTIO_MMIO_CONFIG_BASE), data, size);
        else
            log_bad_access(t, "read past the device config space", offset, size);
    } else if (size != 4 || offset % 4) {
        log_bad_access(t, "register read that is not 32 bits wide and aligned", offset, size);
    } else {
        uint32_t value = read_register(t, offset);
        memcpy(data, &value, 4);
    }
    virtio_mmio_unlock(t);
}

static void mmio_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size)
{
    struct virtio_mmio *t = opaque;
    virtio_mmio_lock(t);
    if (offset >= VIRTIO_MMIO_CONFIG_BASE) {
        if (config_access_ok(t, offset, size) && t->info.ops->config_write)
            t->info.ops->config_write(t, (uint32_t)(offset - VIRTIO_MMIO_CONFIG_BASE), data, size);
        else
            log_bad_access(t, "write outside the writable device config space", offset, size);
    } else if (size != 4 || offset % 4) {
        log_bad_access(t, "register write that is not 32 bits wide and aligned", offset, size);
    } else {
        uint32_t value;
        memcpy(&value, data, 4);
        write_register(t, offset, value);
    }
    virtio_mmio_unlock(t);
}

const struct bus_ops virtio_mmio_bus_ops = {.read = mmio_read, .write = mmio_write};
