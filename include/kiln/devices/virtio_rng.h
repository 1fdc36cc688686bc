/* virtio-rng (virtio 1.2 §5.4): fills each device-writable buffer the guest offers with bytes
 * from getrandom(); the simplest device on the virtio-mmio transport. */
#ifndef KILN_DEVICES_VIRTIO_RNG_H
#define KILN_DEVICES_VIRTIO_RNG_H

#include <stdint.h>

#include "kiln/devices/io_throttle.h"
#include "kiln/virtio/virtio_dev.h"

/* At most this many bytes per request, so one request cannot stall the event loop. */
#define VIRTIO_RNG_MAX_REQUEST (64u * 1024)

struct virtio_rng {
    struct virtio_dev vdev;
    uint64_t bytes_served;       /* read it with virtio_rng_bytes_served (kiln/util/counter.h) */
    struct io_throttle throttle; /* --rng-limit: each request's bytes and one op */
    struct virtq_chain chain;    /* scratch for popping: too big for the stack of a loop callback */
};

/* virtio-rng has nothing of its own a guest can see: its state is the virtio core's. */
struct virtio_rng_state {
    struct virtio_dev_state dev;
};

void virtio_rng_save(struct virtio_rng *rng, struct virtio_rng_state *out);
int virtio_rng_restore(struct virtio_rng *rng, const struct virtio_rng_state *in,
                       struct error *err);

int virtio_rng_init(struct virtio_rng *rng, const struct guest_mem *mem, const struct log *log,
                    struct error *err);
/* The rate limit (--rng-limit, or the API's): a request over budget waits, never fails. */
int virtio_rng_set_limit(struct virtio_rng *rng, const struct rate_limit_config *limit,
                         struct error *err);
/* The limit as it is now (any thread: takes the device's lock). */
void virtio_rng_get_limit(struct virtio_rng *rng, struct rate_limit_config *limit);
/* The limit's timer on the VM's loop / closed. */
int virtio_rng_attach(struct virtio_rng *rng, uv_loop_t *loop, struct error *err);
void virtio_rng_detach(struct virtio_rng *rng);
/* Random bytes handed to the guest so far; any thread, while the device runs. */
uint64_t virtio_rng_bytes_served(const struct virtio_rng *rng);
void virtio_rng_destroy(struct virtio_rng *rng);

#endif
