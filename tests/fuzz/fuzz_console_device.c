/* libFuzzer target for virtio-console as a hostile guest drives it: descriptors, avail
 * entries, doorbells and resets, with host input arriving and the console buffer filling and
 * draining in between. Besides the sanitizers, the device must never write the descriptor
 * tables or avail rings, and the console never holds more than its capacity. */
#include <linux/virtio_console.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/virtio_fake.h"
#include "fuzz_driver.h"
#include "kiln/devices/virtio_console.h"

#define MAX_OPS 64

struct harness {
    struct fuzz_driver drv;
    struct log log;
    struct console console;
    struct virtio_console_dev dev;
    struct virtio_mmio t;
};

static void bring_up(struct harness *h, uint8_t features)
{
    drv_bring_up(&h->drv, &h->t, 1u << VIRTIO_CONSOLE_F_SIZE, features, 2);
}

static void open_device(struct harness *h, uint8_t features)
{
    if (console_open(&h->console, "--console", CONSOLE_NONE, NULL, false, NULL) < 0)
        abort();
    if (virtio_console_init(&h->dev, &h->console, &h->drv.mem, &h->log, NULL) < 0)
        abort();
    struct virtio_mmio_host host = drv_host();
    virtio_mmio_init(&h->t, &h->dev.vdev, &host, 0xd0000000);
    h->drv.dev = h->t.dev;
    /* What console_attach does, without a loop: the console feeds this device. */
    virtio_console_as_console_device(&h->dev, &h->console.device);
    h->console.device_attached = true;
    bring_up(h, features);
}

/* Input: [0] bit 1 INDIRECT_DESC, bit 2 EVENT_IDX; then 8-byte ops, [0] % 7: 0 descriptor
 * ([1] bit 0 picks the queue), 1 RX avail, 2 TX avail, 3 TX doorbell, 4 host input of
 * [6] bytes, 5 the loop drains the console buffer, 6 driver reset and bring-up again;
 * [0] 0xE0-0xE7 a driver store, 0xE8-0xEF a live reconfiguration (fuzz_driver.h). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct harness h;
    static uint8_t input[256];
    uint8_t features;
    if (!drv_start(&h.drv, &h.log, &data, &size, &features))
        return 0;
    open_device(&h, features);
    for (unsigned n = 0; size >= 8 && n < MAX_OPS; n++, data += 8, size -= 8) {
        if (drv_live_op(&h.drv, &h.t, data))
            continue;
        if (drv_ring_op(&h.drv, data[0] % 7, 2, data))
            continue;
        drv_snapshot(&h.drv);
        switch (data[0] % 7) {
        case 3:
            virtio_dev_handle_notify(h.t.dev, VIRTIO_CONSOLE_QUEUE_TX);
            break;
        case 4: {
            size_t len = data[6];
            memset(input, data[2], len);
            if (h.console.device.receive(h.console.device.opaque, input, len) > len)
                abort();
            break;
        }
        case 5:
            console_flush(&h.console);
            break;
        default:
            fake_mmio_write(&h.t, VIRTIO_MMIO_STATUS, 0);
            memset(drv_ram(&h.drv, DRV_DESC(0)), 0, DRV_BUFFERS - DRV_DESC(0));
            h.drv.avail_idx[0] = h.drv.avail_idx[1] = 0;
            bring_up(&h, features);
            continue;
        }
        drv_check(&h.drv);
        if (h.console.out_len > CONSOLE_OUT_CAPACITY)
            abort();
    }
    virtio_console_destroy(&h.dev);
    console_close(&h.console);
    return 0;
}
