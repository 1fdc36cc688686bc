/* libFuzzer target for virtio-balloon as a hostile guest drives it: descriptors, avail entries
 * and doorbells on the inflate and deflate queues, driver stores (the PFN lists), resets and
 * live reconfiguration. Besides the sanitizers: the balloon never holds more pages than the
 * VM has, and its count is always what went in less what came out. The driver's own rings are
 * not compared, unlike the other device fuzzers: a guest may balloon its ring pages, which
 * then read zero, as it asked. */
#include <linux/virtio_ring.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_driver.h"
#include "kiln/devices/virtio_balloon.h"

#define MAX_OPS 64

struct harness {
    struct fuzz_driver drv;
    struct log log;
    struct virtio_balloon b;
    struct virtio_mmio t;
};

static void bring_up(struct harness *h, uint8_t features)
{
    drv_bring_up(&h->drv, &h->t, 0, features, 2);
}

/* The balloon's own bookkeeping: never more pages than RAM, only pages that went in come out,
 * and it holds at most what went in less what came out (a reset empties it). */
static void check_balloon(struct harness *h)
{
    struct virtio_balloon_info info;
    virtio_balloon_read_info(&h->b, &info);
    const struct virtio_balloon_counters *c = &info.counters;
    if (info.pages_in_balloon > DRV_RAM / 4096 || c->deflated_pages > c->inflated_pages ||
        info.pages_in_balloon > c->inflated_pages - c->deflated_pages ||
        c->discarded_pages > c->inflated_pages)
        abort();
}

/* Input: [0] bit 1 INDIRECT_DESC, bit 2 EVENT_IDX; then 8-byte ops, [0] % 6: 0 descriptor
 * ([1] bit 0 picks the queue), 1-2 avail entry on the inflate or deflate queue, 3 and 4 their
 * doorbells, 5 driver reset and bring-up again; [0] 0xE0-0xE7 a driver store (the PFNs),
 * 0xE8-0xEF a live reconfiguration (fuzz_driver.h has the op bytes). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct harness h;
    uint8_t features;
    if (!drv_start(&h.drv, &h.log, &data, &size, &features))
        return 0;
    struct virtio_balloon_options options = {.target_pages = 8};
    if (virtio_balloon_init(&h.b, &options, &h.drv.mem, &h.log, NULL) < 0)
        abort();
    struct virtio_mmio_host host = drv_host();
    virtio_mmio_init(&h.t, &h.b.vdev, &host, 0xd0000000);
    h.drv.dev = h.t.dev;
    bring_up(&h, features);
    for (unsigned n = 0; size >= 8 && n < MAX_OPS; n++, data += 8, size -= 8) {
        if (drv_live_op(&h.drv, &h.t, data))
            continue;
        if (drv_ring_op(&h.drv, data[0] % 6, 2, data))
            continue;
        if (data[0] % 6 == 5) {
            fake_mmio_write(&h.t, VIRTIO_MMIO_STATUS, 0);
            bring_up(&h, features);
            continue;
        }
        h.drv.poked = true; /* the rings may be ballooned away: see the header */
        virtio_dev_handle_notify(h.t.dev, data[0] % 6 - 3);
        drv_check(&h.drv);
        check_balloon(&h);
    }
    virtio_dev_handle_notify(h.t.dev, 0);
    virtio_dev_handle_notify(h.t.dev, 1);
    check_balloon(&h);
    virtio_balloon_destroy(&h.b);
    return 0;
}
