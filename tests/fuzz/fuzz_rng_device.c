/* libFuzzer target for virtio-rng as a hostile guest drives it: descriptors, avail entries,
 * doorbells, resets and live reconfiguration of its one queue. Besides the sanitizers, the
 * device must never write the descriptor table or the avail ring, and never report more than
 * VIRTIO_RNG_MAX_REQUEST bytes in one used element. */
#include <linux/virtio_ring.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_driver.h"
#include "kiln/devices/virtio_rng.h"

#define MAX_OPS 64

struct harness {
    struct fuzz_driver drv;
    struct log log;
    struct virtio_rng rng;
    struct virtio_mmio t;
};

static void bring_up(struct harness *h, uint8_t features)
{
    drv_bring_up(&h->drv, &h->t, 0, features, 1);
}

/* Every used element the device wrote so far claims at most VIRTIO_RNG_MAX_REQUEST bytes
 * (unless a stored indirect table let the device's random bytes land on the used ring). */
static void check_used(struct harness *h)
{
    if (h->drv.poked)
        return;
    const struct vring_used *used = (const struct vring_used *)drv_ram(&h->drv, DRV_USED(0));
    for (unsigned i = 0; i < DRV_QSIZE; i++)
        if (used->ring[i].len > VIRTIO_RNG_MAX_REQUEST)
            abort();
}

/* Input: [0] bit 1 INDIRECT_DESC, bit 2 EVENT_IDX; then 8-byte ops, [0] % 5: 0 descriptor,
 * 1-2 avail entry, 3 doorbell, 4 driver reset and bring-up again; [0] 0xE0-0xE7 a driver
 * store, 0xE8-0xEF a live reconfiguration (fuzz_driver.h has the op bytes). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct harness h;
    uint8_t features;
    if (!drv_start(&h.drv, &h.log, &data, &size, &features))
        return 0;
    if (virtio_rng_init(&h.rng, &h.drv.mem, &h.log, NULL) < 0)
        abort();
    struct virtio_mmio_host host = drv_host();
    virtio_mmio_init(&h.t, &h.rng.vdev, &host, 0xd0000000);
    h.drv.dev = h.t.dev;
    bring_up(&h, features);
    for (unsigned n = 0; size >= 8 && n < MAX_OPS; n++, data += 8, size -= 8) {
        if (drv_live_op(&h.drv, &h.t, data))
            continue;
        if (drv_ring_op(&h.drv, data[0] % 5, 1, data))
            continue;
        if (data[0] % 5 == 4) {
            fake_mmio_write(&h.t, VIRTIO_MMIO_STATUS, 0);
            bring_up(&h, features);
            continue;
        }
        drv_snapshot(&h.drv);
        virtio_dev_handle_notify(h.t.dev, 0);
        drv_check(&h.drv);
    }
    drv_snapshot(&h.drv);
    virtio_dev_handle_notify(h.t.dev, 0);
    drv_check(&h.drv);
    check_used(&h);
    virtio_rng_destroy(&h.rng);
    return 0;
}
