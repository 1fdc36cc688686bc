/* virtio-console with one port: transmit chains are copied into the VM's console output
 * buffer (a chain that does not fit waits, nothing is lost), host input goes into receive
 * buffers, and F_SIZE reports the host terminal's size. */
#include <linux/virtio_ids.h>
#include <string.h>

#include "kiln/devices/virtio_console.h"

#define CONSOLE_QUEUE_SIZE 64

/* Writes transmit chains out until the queue is empty or the console buffer is full. */
static void transmit(struct virtio_mmio *t, struct virtio_console_dev *dev)
{
    struct virtqueue *vq = &t->queues[VIRTIO_CONSOLE_QUEUE_TX];
    uint16_t used_before = vq->used_idx;
    for (;;) {
        if (!dev->tx_pending) {
            if (!virtio_mmio_pop(t, VIRTIO_CONSOLE_QUEUE_TX, &dev->chain, NULL))
                break;
            dev->tx_pending = true;
            dev->tx_offset = 0;
        }
        uint64_t skip = dev->tx_offset;
        bool full = false;
        for (unsigned i = 0; i < dev->chain.nreadable && !full; i++) {
            size_t len = dev->chain.iov[i].iov_len;
            if (skip >= len) {
                skip -= len;
                continue;
            }
            const uint8_t *p = (const uint8_t *)dev->chain.iov[i].iov_base + skip;
            size_t n = console_write(dev->console, p, len - skip);
            dev->tx_offset += n;
            full = n < len - skip;
            skip = 0;
        }
        if (full) {
            dev->tx_blocked = true; /* resumed by tx_ready_again once the loop wrote it out */
            break;
        }
        dev->tx_pending = false;
        virtqueue_push(vq, dev->chain.head, 0);
    }
    if (vq->used_idx != used_before)
        virtio_mmio_notify_used(t, VIRTIO_CONSOLE_QUEUE_TX);
}

static void console_queue_notify(struct virtio_mmio *t, unsigned q)
{
    struct virtio_console_dev *dev = virtio_mmio_device(t);
    if (q == VIRTIO_CONSOLE_QUEUE_TX)
        transmit(t, dev);
    else
        console_rx_space(dev->console); /* new receive buffers: stdin may flow again */
}

static void console_reset(struct virtio_mmio *t)
{
    struct virtio_console_dev *dev = virtio_mmio_device(t);
    dev->tx_pending = false;
    dev->tx_blocked = false;
}

/* Host input into receive buffers (loop thread); returns how much the guest had room for. */
static size_t console_receive(void *opaque, const uint8_t *bytes, size_t len)
{
    struct virtio_console_dev *dev = opaque;
    struct virtio_mmio *t = dev->transport;
    size_t done = 0;
    virtio_mmio_lock(t);
    struct virtqueue *vq = &t->queues[VIRTIO_CONSOLE_QUEUE_RX];
    bool live = (t->status & VIRTIO_CONFIG_S_DRIVER_OK) && vq->ready;
    const char *why = NULL;
    while (live && done < len) {
        enum virtq_pop_result r = virtqueue_pop(vq, &dev->rx_chain, &why);
        if (r == VIRTQ_POP_EMPTY)
            break;
        if (r == VIRTQ_POP_BROKEN_RING || dev->rx_chain.nwritable == 0) {
            virtio_mmio_needs_reset(t, why ? why : "receive buffer is not device-writable");
            break;
        }
        uint32_t n = 0;
        for (unsigned i = dev->rx_chain.nreadable;
             i < dev->rx_chain.nreadable + dev->rx_chain.nwritable && done < len; i++) {
            size_t k = dev->rx_chain.iov[i].iov_len < len - done ? dev->rx_chain.iov[i].iov_len
                                                                 : len - done;
            memcpy(dev->rx_chain.iov[i].iov_base, bytes + done, k);
            done += k;
            n += (uint32_t)k;
        }
        virtqueue_push(vq, dev->rx_chain.head, n);
    }
    if (done > 0)
        virtio_mmio_notify_used(t, VIRTIO_CONSOLE_QUEUE_RX);
    virtio_mmio_unlock(t);
    return done;
}

static void console_tx_ready_again(void *opaque)
{
    struct virtio_console_dev *dev = opaque;
    virtio_mmio_lock(dev->transport);
    if (dev->tx_blocked) {
        dev->tx_blocked = false;
        transmit(dev->transport, dev);
    }
    virtio_mmio_unlock(dev->transport);
}

static void console_config_read(struct virtio_mmio *t, uint32_t offset, uint8_t *data,
                                unsigned size)
{
    struct virtio_console_dev *dev = virtio_mmio_device(t);
    virtio_mmio_config_copy(&dev->config, sizeof(dev->config), offset, data, size);
}

static const struct virtio_device_ops virtio_console_ops = {
    .config_read = console_config_read,
    .queue_notify = console_queue_notify,
    .reset = console_reset,
};

void virtio_console_init(struct virtio_console_dev *dev, struct console *console)
{
    memset(dev, 0, offsetof(struct virtio_console_dev, chain));
    dev->console = console;
    dev->config.max_nr_ports = 1;
}

void virtio_console_device_info(struct virtio_console_dev *dev, struct virtio_device_info *info)
{
    memset(info, 0, sizeof(*info));
    info->name = "virtio-console";
    info->device_id = VIRTIO_ID_CONSOLE;
    info->features = 1ULL << VIRTIO_CONSOLE_F_SIZE;
    info->num_queues = 2;
    info->queue_max_size = CONSOLE_QUEUE_SIZE;
    /* cols and rows only: emerg_wr would need F_EMERG_WRITE, max_nr_ports F_MULTIPORT. */
    info->config_size = offsetof(struct virtio_console_config, max_nr_ports);
    info->ops = &virtio_console_ops;
    info->opaque = dev;
}

void virtio_console_bind(struct virtio_console_dev *dev, struct virtio_mmio *transport)
{
    dev->transport = transport;
}

void virtio_console_as_console_device(struct virtio_console_dev *dev, struct console_device *out)
{
    out->receive = console_receive;
    out->tx_ready_again = console_tx_ready_again;
    out->opaque = dev;
}

void virtio_console_set_size(struct virtio_console_dev *dev, uint16_t cols, uint16_t rows)
{
    virtio_mmio_lock(dev->transport);
    if (dev->config.cols != cols || dev->config.rows != rows) {
        dev->config.cols = cols;
        dev->config.rows = rows;
        virtio_mmio_config_changed(dev->transport);
    }
    virtio_mmio_unlock(dev->transport);
}
