/* virtio-console with one port: transmit chains are copied into the VM's console output
 * buffer (a chain that does not fit waits, nothing is lost), host input goes into receive
 * buffers, and F_SIZE reports the host terminal's size. */
#include <linux/virtio_ids.h>
#include <string.h>

#include "kiln/util/container_of.h"
#include "kiln/util/counter.h"
#include "kiln/devices/virtio_console.h"
#include "kiln/util/iov.h"

#define CONSOLE_QUEUE_SIZE 64

static struct virtio_console_dev *console_of(struct virtio_dev *d)
{
    return container_of(d, struct virtio_console_dev, vdev);
}

/* Writes transmit chains out until the queue is empty or the console buffer is full. */
static void transmit(struct virtio_dev *d, struct virtio_console_dev *dev)
{
    bool pushed = false;
    /* A chain held from before a reset or QueueReady=0 belongs to the queue as it was: the
     * driver took its buffers back, and the queue it may have enabled since never gave it. */
    if (dev->tx_pending && dev->tx_generation != virtio_dev_generation(d))
        dev->tx_pending = false;
    for (;;) {
        if (!dev->tx_pending) {
            if (!virtio_dev_pop(d, VIRTIO_CONSOLE_QUEUE_TX, &dev->chain, NULL))
                break;
            dev->tx_pending = true;
            dev->tx_generation = virtio_dev_generation(d);
            dev->tx_offset = dev->tx_resume < dev->chain.readable_len ? dev->tx_resume : 0;
            dev->tx_resume = 0;
        }
        bool full = false;
        while (!full && dev->tx_offset < dev->chain.readable_len) {
            /* One buffer (or its rest) at a time, straight from guest memory. */
            size_t skip = dev->tx_offset;
            unsigned i = 0;
            while (skip >= dev->chain.iov[i].iov_len)
                skip -= dev->chain.iov[i++].iov_len;
            size_t len = dev->chain.iov[i].iov_len - skip;
            size_t n = console_write(dev->console,
                                     (const uint8_t *)dev->chain.iov[i].iov_base + skip, len);
            dev->tx_offset += n;
            counter_add(&dev->counters.tx_bytes, n);
            full = n < len;
        }
        if (full) {
            dev->tx_blocked = true; /* resumed by tx_ready_again once the loop wrote it out */
            break;
        }
        dev->tx_pending = false;
        virtio_dev_push(d, VIRTIO_CONSOLE_QUEUE_TX, dev->chain.head, 0);
        pushed = true;
    }
    if (pushed)
        virtio_dev_notify_used(d, VIRTIO_CONSOLE_QUEUE_TX);
}

static void console_queue_notify(struct virtio_dev *d, unsigned q)
{
    struct virtio_console_dev *dev = console_of(d);
    if (q == VIRTIO_CONSOLE_QUEUE_TX)
        transmit(d, dev);
    else
        console_rx_space(dev->console); /* new receive buffers: stdin may flow again */
}

static void console_reset(struct virtio_dev *d)
{
    struct virtio_console_dev *dev = console_of(d);
    dev->tx_pending = false;
    dev->tx_blocked = false;
    dev->tx_resume = 0;
}

/* Host input into receive buffers (loop thread); returns how much the guest had room for. */
static size_t console_receive(void *opaque, const uint8_t *bytes, size_t len)
{
    struct virtio_console_dev *dev = opaque;
    struct virtio_dev *d = &dev->vdev;
    size_t done = 0;
    virtio_dev_lock(d);
    while (done < len && virtio_dev_pop(d, VIRTIO_CONSOLE_QUEUE_RX, &dev->rx_chain, NULL)) {
        if (dev->rx_chain.nwritable == 0) {
            virtio_dev_reject(d, VIRTIO_CONSOLE_QUEUE_RX, dev->rx_chain.head,
                              "receive buffer is not device-writable");
            continue;
        }
        size_t n = iov_from_buf(virtq_chain_writable(&dev->rx_chain), dev->rx_chain.nwritable, 0,
                                bytes + done, len - done);
        done += n;
        virtio_dev_push(d, VIRTIO_CONSOLE_QUEUE_RX, dev->rx_chain.head, (uint32_t)n);
    }
    counter_add(&dev->counters.rx_bytes, done);
    if (done > 0)
        virtio_dev_notify_used(d, VIRTIO_CONSOLE_QUEUE_RX);
    virtio_dev_unlock(d);
    return done;
}

static void console_tx_ready_again(void *opaque)
{
    struct virtio_console_dev *dev = opaque;
    virtio_dev_lock(&dev->vdev);
    if (dev->tx_blocked) {
        dev->tx_blocked = false;
        transmit(&dev->vdev, dev);
    }
    virtio_dev_unlock(&dev->vdev);
}

static void console_config_read(struct virtio_dev *d, uint32_t offset, uint8_t *data, unsigned size)
{
    struct virtio_console_dev *dev = console_of(d);
    virtio_dev_config_copy(&dev->config, sizeof(dev->config), offset, data, size);
}

static const struct virtio_dev_ops virtio_console_ops = {
    .config_read = console_config_read,
    .queue_notify = console_queue_notify,
    .reset = console_reset,
};

int virtio_console_init(struct virtio_console_dev *dev, struct console *console,
                        const struct guest_mem *mem, const struct log *log, struct error *err)
{
    memset(dev, 0, offsetof(struct virtio_console_dev, chain));
    dev->console = console;
    dev->config.max_nr_ports = 1;
    struct virtio_device_info info = {
        .name = "virtio-console",
        .device_id = VIRTIO_ID_CONSOLE,
        .features = 1ULL << VIRTIO_CONSOLE_F_SIZE,
        .num_queues = 2,
        .queue_max_size = CONSOLE_QUEUE_SIZE,
        /* cols and rows only: emerg_wr would need F_EMERG_WRITE, max_nr_ports F_MULTIPORT. */
        .config_size = offsetof(struct virtio_console_config, max_nr_ports),
        .ops = &virtio_console_ops,
    };
    return virtio_dev_init(&dev->vdev, &info, mem, log, err);
}

void virtio_console_counters(const struct virtio_console_dev *dev,
                             struct virtio_console_counters *out)
{
    out->rx_bytes = counter_read(&dev->counters.rx_bytes);
    out->tx_bytes = counter_read(&dev->counters.tx_bytes);
}

void virtio_console_destroy(struct virtio_console_dev *dev)
{
    virtio_dev_destroy(&dev->vdev);
}

void virtio_console_save(struct virtio_console_dev *dev, struct virtio_console_state *out)
{
    virtio_dev_lock(&dev->vdev);
    memset(out, 0, sizeof(*out));
    virtio_dev_save(&dev->vdev, &out->dev);
    out->cols = dev->config.cols;
    out->rows = dev->config.rows;
    out->tx_pending = dev->tx_pending;
    out->tx_offset = dev->tx_pending ? dev->tx_offset : 0;
    virtio_dev_unlock(&dev->vdev);
}

int virtio_console_restore(struct virtio_console_dev *dev, const struct virtio_console_state *in,
                           struct error *err)
{
    const struct virtqueue_state *tx = &in->dev.queues[VIRTIO_CONSOLE_QUEUE_TX];
    if (in->tx_pending > 1 || (in->tx_pending && !tx->ready) ||
        (!in->tx_pending && in->tx_offset) || in->tx_offset > VIRTQ_MAX_CHAIN_BYTES)
        return error_fmt(err, -EINVAL,
                         "%s: saved transmit progress (pending %u, offset %llu) does not fit "
                         "the transmit queue",
                         dev->vdev.label, in->tx_pending, (unsigned long long)in->tx_offset);
    virtio_dev_lock(&dev->vdev);
    int r = virtio_dev_restore(&dev->vdev, &in->dev, err);
    if (r == 0) {
        dev->config.cols = in->cols;
        dev->config.rows = in->rows;
        dev->tx_pending = false;
        dev->tx_blocked = false;
        dev->tx_resume = 0;
        if (in->tx_pending) {
            /* The half-written chain is the last one taken: take it again, skip what went. */
            virtqueue_unpop(&dev->vdev.queues[VIRTIO_CONSOLE_QUEUE_TX], 1);
            dev->tx_resume = in->tx_offset;
        }
    }
    virtio_dev_unlock(&dev->vdev);
    return r;
}

void virtio_console_as_console_device(struct virtio_console_dev *dev, struct console_device *out)
{
    out->receive = console_receive;
    out->tx_ready_again = console_tx_ready_again;
    out->opaque = dev;
}

void virtio_console_set_size(struct virtio_console_dev *dev, uint16_t cols, uint16_t rows)
{
    virtio_dev_lock(&dev->vdev);
    if (dev->config.cols != cols || dev->config.rows != rows) {
        dev->config.cols = cols;
        dev->config.rows = rows;
        virtio_dev_config_changed(&dev->vdev);
    }
    virtio_dev_unlock(&dev->vdev);
}
