/* Virtio layer 3 of 4, the transport: the virtio-mmio v2 register window (virtio 1.2 §4.2),
 * each register mapped onto the device core (virtio_dev.c). No KVM, no event loop. */
#include <linux/virtio_config.h>
#include <errno.h>
#include <linux/virtio_mmio.h>
#include <stdio.h>
#include <string.h>

#include "kiln/virtio/virtio_mmio.h"

#define VIRTIO_MMIO_MAGIC       0x74726976 /* "virt" */
#define VIRTIO_MMIO_VERSION_2   2
#define VIRTIO_MMIO_QUEUE_RESET 0x0c0 /* virtio 1.2 §4.2.2; not in every UAPI header yet */
#define VIRTIO_MMIO_NO_SHM      0xffffffffu

static void log_bad_access(struct virtio_mmio *t, const char *what, uint64_t offset, unsigned size)
{
    if (t->bad_access_logged)
        return;
    t->bad_access_logged = true;
    log_warn(t->dev->log, "%s: %s (offset 0x%llx, %u bytes); ignored, further ones too",
             t->dev->label, what, (unsigned long long)offset, size);
}

static void raise_interrupt(void *opaque, enum virtio_interrupt why)
{
    struct virtio_mmio *t = opaque;
    t->interrupt_status |=
        why == VIRTIO_INTERRUPT_VRING ? VIRTIO_MMIO_INT_VRING : VIRTIO_MMIO_INT_CONFIG;
    t->host.raise_irq(t->host.opaque);
}

static void kick_queue(void *opaque, unsigned q)
{
    struct virtio_mmio *t = opaque;
    t->host.kick(t->host.opaque, q);
}

static void reset_registers(struct virtio_mmio *t)
{
    t->device_features_sel = 0;
    t->driver_features_sel = 0;
    t->queue_sel = 0;
    t->interrupt_status = 0;
    t->shm_sel = 0;
}

void virtio_mmio_init(struct virtio_mmio *t, struct virtio_dev *dev,
                      const struct virtio_mmio_host *host, uint64_t base)
{
    memset(t, 0, sizeof(*t));
    t->dev = dev;
    t->host = *host;
    t->base = base;
    reset_registers(t);
    char label[VIRTIO_DEV_LABEL_SIZE];
    snprintf(label, sizeof(label), "%s at 0x%llx", dev->info.name, (unsigned long long)base);
    struct virtio_transport transport = {
        .interrupt = raise_interrupt, .kick = kick_queue, .opaque = t};
    virtio_dev_bind(dev, &transport, label);
}

void virtio_mmio_save(const struct virtio_mmio *t, struct virtio_mmio_state *out)
{
    memset(out, 0, sizeof(*out));
    out->device_features_sel = t->device_features_sel;
    out->driver_features_sel = t->driver_features_sel;
    out->queue_sel = t->queue_sel;
    out->interrupt_status = t->interrupt_status;
    out->shm_sel = t->shm_sel;
}

int virtio_mmio_restore(struct virtio_mmio *t, const struct virtio_mmio_state *in,
                        struct error *err)
{
    if (in->interrupt_status & ~(uint32_t)(VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG))
        return error_fmt(err, -EINVAL, "%s: saved InterruptStatus 0x%x has unknown bits",
                         t->dev->label, in->interrupt_status);
    /* Selectors may hold any value a driver could write: reads through them are bounded. */
    t->device_features_sel = in->device_features_sel;
    t->driver_features_sel = in->driver_features_sel;
    t->queue_sel = in->queue_sel;
    t->interrupt_status = in->interrupt_status;
    t->shm_sel = in->shm_sel;
    return 0;
}

static struct virtqueue *selected_queue(struct virtio_mmio *t)
{
    return t->queue_sel < t->dev->info.num_queues ? &t->dev->queues[t->queue_sel] : NULL;
}

static uint32_t feature_page(uint64_t features, uint32_t sel)
{
    return sel == 0 ? (uint32_t)features : sel == 1 ? (uint32_t)(features >> 32) : 0;
}

static uint32_t read_register(struct virtio_mmio *t, uint64_t offset)
{
    struct virtio_dev *d = t->dev;
    struct virtqueue *vq = selected_queue(t);
    switch (offset) {
    case VIRTIO_MMIO_MAGIC_VALUE:
        return VIRTIO_MMIO_MAGIC;
    case VIRTIO_MMIO_VERSION:
        return VIRTIO_MMIO_VERSION_2;
    case VIRTIO_MMIO_DEVICE_ID:
        return d->info.device_id;
    case VIRTIO_MMIO_VENDOR_ID:
        return KILN_VIRTIO_VENDOR_ID;
    case VIRTIO_MMIO_DEVICE_FEATURES:
        return feature_page(d->device_features, t->device_features_sel);
    case VIRTIO_MMIO_QUEUE_NUM_MAX:
        return vq ? vq->max_size : 0;
    case VIRTIO_MMIO_QUEUE_READY:
        return vq ? vq->ready : 0;
    case VIRTIO_MMIO_INTERRUPT_STATUS:
        return t->interrupt_status;
    case VIRTIO_MMIO_STATUS:
        return d->status;
    case VIRTIO_MMIO_SHM_LEN_LOW:
    case VIRTIO_MMIO_SHM_LEN_HIGH:
    case VIRTIO_MMIO_SHM_BASE_LOW:
    case VIRTIO_MMIO_SHM_BASE_HIGH:
        return VIRTIO_MMIO_NO_SHM; /* no shared memory regions: length -1 for every id */
    case VIRTIO_MMIO_QUEUE_RESET:
        return 0;
    case VIRTIO_MMIO_CONFIG_GENERATION:
        return d->config_generation;
    default:
        log_bad_access(t, "read of a write-only or unknown register", offset, 4);
        return 0;
    }
}

static void write_status(struct virtio_mmio *t, uint32_t value)
{
    const char *complaint = virtio_dev_set_status(t->dev, value);
    if (complaint)
        log_bad_access(t, complaint, VIRTIO_MMIO_STATUS, 4);
    if (value == 0)
        reset_registers(t);
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

static void write_queue_ready(struct virtio_mmio *t, uint64_t offset, uint32_t value)
{
    if (t->queue_sel >= t->dev->info.num_queues) {
        log_bad_access(t, "QueueReady for a queue that does not exist", offset, 4);
        return;
    }
    const char *complaint = virtio_dev_set_queue_ready(t->dev, t->queue_sel, value != 0);
    if (complaint)
        log_bad_access(t, complaint, offset, 4);
}

static void write_register(struct virtio_mmio *t, uint64_t offset, uint32_t value)
{
    switch (offset) {
    case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
        t->device_features_sel = value;
        break;
    case VIRTIO_MMIO_DRIVER_FEATURES:
        if (!virtio_dev_set_driver_features(t->dev, t->driver_features_sel, value))
            log_bad_access(t, "DriverFeatures written outside feature negotiation", offset, 4);
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
        write_queue_setup(t, selected_queue(t), offset, value);
        break;
    case VIRTIO_MMIO_QUEUE_READY:
        write_queue_ready(t, offset, value);
        break;
    case VIRTIO_MMIO_QUEUE_NOTIFY:
        /* Only reached when the ioeventfd did not catch the write (unit tests, or a write
         * that did not match any queue's datamatch). */
        if (value < t->dev->info.num_queues)
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

static void mmio_read(void *opaque, uint64_t offset, uint8_t *data, unsigned size)
{
    struct virtio_mmio *t = opaque;
    memset(data, 0, size);
    virtio_dev_lock(t->dev);
    if (offset >= VIRTIO_MMIO_CONFIG_BASE) {
        if (!virtio_dev_config_read(t->dev, (uint32_t)(offset - VIRTIO_MMIO_CONFIG_BASE), data,
                                    size))
            log_bad_access(t, "read past the device config space", offset, size);
    } else if (size != 4 || offset % 4) {
        log_bad_access(t, "register read that is not 32 bits wide and aligned", offset, size);
    } else {
        uint32_t value = read_register(t, offset);
        memcpy(data, &value, 4);
    }
    virtio_dev_unlock(t->dev);
}

static void mmio_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size)
{
    struct virtio_mmio *t = opaque;
    virtio_dev_lock(t->dev);
    if (offset >= VIRTIO_MMIO_CONFIG_BASE) {
        if (!virtio_dev_config_write(t->dev, (uint32_t)(offset - VIRTIO_MMIO_CONFIG_BASE), data,
                                     size))
            log_bad_access(t, "write outside the writable device config space", offset, size);
    } else if (size != 4 || offset % 4) {
        log_bad_access(t, "register write that is not 32 bits wide and aligned", offset, size);
    } else {
        uint32_t value;
        memcpy(&value, data, 4);
        write_register(t, offset, value);
    }
    virtio_dev_unlock(t->dev);
}

const struct bus_ops virtio_mmio_bus_ops = {.read = mmio_read, .write = mmio_write};
