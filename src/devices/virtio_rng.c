/* virtio-rng: one request queue; each chain's device-writable buffers are filled from
 * getrandom() and given back at once, on the event-loop thread. */
#include <errno.h>
#include <linux/virtio_ids.h>
#include <string.h>
#include <sys/random.h>

#include "kiln/util/container_of.h"
#include "kiln/util/counter.h"
#include "kiln/devices/virtio_rng.h"

#define VIRTIO_RNG_QUEUE_SIZE 64
/* Requests served per doorbell before the loop gets a turn (the rest on a re-kick): up to
 * 512 KiB from getrandom(), about a millisecond, where a full queue would be 4 MiB. */
#define VIRTIO_RNG_CHAINS_PER_CALL 8

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

/* A request takes the bytes it will get and one op from the rate limit, or waits. */
static bool serve_request(struct virtio_dev *d, unsigned q, struct virtq_chain *chain)
{
    struct virtio_rng *rng = container_of(d, struct virtio_rng, vdev);
    if (chain->nwritable == 0) {
        virtio_dev_reject(d, q, chain->head, "no device-writable buffer");
        return true;
    }
    uint64_t want =
        chain->writable_len < VIRTIO_RNG_MAX_REQUEST ? chain->writable_len : VIRTIO_RNG_MAX_REQUEST;
    if (!io_throttle_admit(&rng->throttle, want, 1)) {
        virtio_dev_unpop(d, q);
        return false;
    }
    uint32_t len = fill_random(chain);
    counter_add(&rng->bytes_served, len);
    virtio_dev_push(d, q, chain->head, len);
    return true;
}

static void rng_queue_notify(struct virtio_dev *d, unsigned q)
{
    struct virtio_rng *rng = container_of(d, struct virtio_rng, vdev);
    if (io_throttle_blocked(&rng->throttle))
        return; /* the throttle's timer kicks the queue when the tokens are back */
    virtio_dev_drain(d, q, &rng->chain, VIRTIO_RNG_CHAINS_PER_CALL, NULL, serve_request);
    virtio_dev_notify_used(d, q);
}

static void resume_queue(struct io_throttle *t, void *opaque)
{
    virtio_dev_kick(opaque, 0);
}

static void rng_config_read(struct virtio_dev *d, uint32_t offset, uint8_t *data, unsigned size)
{
    memset(data, 0, size); /* virtio-rng has no config space; config_size 0 keeps us unreached */
}

static const struct virtio_dev_ops virtio_rng_ops = {
    .config_read = rng_config_read,
    .queue_notify = rng_queue_notify,
};

int virtio_rng_init(struct virtio_rng *rng, const struct guest_mem *mem, const struct log *log,
                    struct error *err)
{
    rng->bytes_served = 0;
    io_throttle_init(&rng->throttle, resume_queue, &rng->vdev);
    struct virtio_device_info info = {
        .name = "virtio-rng",
        .device_id = VIRTIO_ID_RNG,
        .num_queues = 1,
        .queue_max_size = VIRTIO_RNG_QUEUE_SIZE,
        .config_size = 0,
        .ops = &virtio_rng_ops,
    };
    return virtio_dev_init(&rng->vdev, &info, mem, log, err);
}

int virtio_rng_set_limit(struct virtio_rng *rng, const struct rate_limit_config *limit,
                         struct error *err)
{
    virtio_dev_lock(&rng->vdev);
    int r = io_throttle_set(&rng->throttle, limit, "virtio-rng", err);
    virtio_dev_unlock(&rng->vdev);
    return r;
}

void virtio_rng_get_limit(struct virtio_rng *rng, struct rate_limit_config *limit)
{
    virtio_dev_lock(&rng->vdev);
    *limit = rng->throttle.config;
    virtio_dev_unlock(&rng->vdev);
}

int virtio_rng_attach(struct virtio_rng *rng, uv_loop_t *loop, struct error *err)
{
    return io_throttle_attach(&rng->throttle, loop, err);
}

void virtio_rng_detach(struct virtio_rng *rng)
{
    io_throttle_detach(&rng->throttle);
}

uint64_t virtio_rng_bytes_served(const struct virtio_rng *rng)
{
    return counter_read(&rng->bytes_served);
}

void virtio_rng_destroy(struct virtio_rng *rng)
{
    virtio_dev_destroy(&rng->vdev);
}

void virtio_rng_save(struct virtio_rng *rng, struct virtio_rng_state *out)
{
    virtio_dev_lock(&rng->vdev);
    virtio_dev_save(&rng->vdev, &out->dev);
    virtio_dev_unlock(&rng->vdev);
}

int virtio_rng_restore(struct virtio_rng *rng, const struct virtio_rng_state *in, struct error *err)
{
    virtio_dev_lock(&rng->vdev);
    int r = virtio_dev_restore(&rng->vdev, &in->dev, err);
    virtio_dev_unlock(&rng->vdev);
    return r;
}
