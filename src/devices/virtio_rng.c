/* virtio-rng: one request queue; each chain's device-writable buffers are filled from
 * getrandom() and given back at once, on the event-loop thread. */
#include <errno.h>
#include <linux/virtio_ids.h>
#include <string.h>
#include <sys/random.h>

#include "kiln/devices/virtio_rng.h"

#define VIRTIO_RNG_QUEUE_SIZE 64

/* Fills up to VIRTIO_RNG_MAX_REQUEST bytes of the chain's writable buffers; returns the count. */
static uint32_t fill_random(const struct virtq_chain *chain)
{
    uint32_t filled = 0;
    for (unsigned i = chain->nreadable; i < chain->nreadable + chain->nwritable; i++) {
        uint8_t *p = chain->iov[i].iov_base;
        size_t want = chain->iov[i].iov_len;
        if (want > VIRTIO_RNG_MAX_REQUEST - filled)
            want = VIRTIO_RNG_MAX_REQUEST - filled;
        while (want > 0) {
            /* The kernel pool is initialised long before a VM starts; never block the loop. */
            ssize_t n = getrandom(p, want, GRND_NONBLOCK);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return filled;
            p += n;
            want -= (size_t)n;
            filled += (uint32_t)n;
        }
        if (filled == VIRTIO_RNG_MAX_REQUEST)
            break;
    }
    return filled;
}

static void rng_queue_notify(struct virtio_mmio *t, unsigned q)
{
    struct virtio_rng *rng = virtio_mmio_device(t);
    while (virtio_mmio_pop(t, q, &rng->chain, NULL)) {
        uint32_t len = 0;
        if (rng->chain.nwritable == 0)
            virtio_mmio_log_once(t, "request dropped: no device-writable buffer");
        else
            len = fill_random(&rng->chain);
        rng->bytes_served += len;
        virtqueue_push(&t->queues[q], rng->chain.head, len);
    }
    virtio_mmio_notify_used(t, q);
}

static void rng_config_read(struct virtio_mmio *t, uint32_t offset, uint8_t *data, unsigned size)
{
    memset(data, 0, size); /* virtio-rng has no config space; config_size 0 keeps us unreached */
}

static const struct virtio_device_ops virtio_rng_ops = {
    .config_read = rng_config_read,
    .queue_notify = rng_queue_notify,
};

void virtio_rng_device_info(struct virtio_rng *rng, struct virtio_device_info *info)
{
    memset(info, 0, sizeof(*info));
    info->name = "virtio-rng";
    info->device_id = VIRTIO_ID_RNG;
    info->num_queues = 1;
    info->queue_max_size = VIRTIO_RNG_QUEUE_SIZE;
    info->config_size = 0;
    info->ops = &virtio_rng_ops;
    info->opaque = rng;
}
