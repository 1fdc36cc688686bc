/* virtio-rng (virtio 1.2 §5.4): fills each device-writable buffer the guest offers with bytes
 * from getrandom(); the simplest device on the virtio-mmio transport. */
#ifndef KILN_DEVICES_VIRTIO_RNG_H
#define KILN_DEVICES_VIRTIO_RNG_H

#include <stdint.h>

#include "kiln/virtio/virtio_mmio.h"

/* At most this many bytes per request, so one request cannot stall the event loop. */
#define VIRTIO_RNG_MAX_REQUEST (64u * 1024)

struct virtio_rng {
    uint64_t bytes_served;
    struct virtq_chain chain; /* scratch for popping: too big for the stack of a loop callback */
};

void virtio_rng_device_info(struct virtio_rng *rng, struct virtio_device_info *info);

#endif
