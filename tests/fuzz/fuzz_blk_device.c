/* libFuzzer target for the virtio-blk device as a hostile guest drives it: the input is a
 * script of descriptors, avail entries, doorbells, device resets, live reconfiguration and
 * loop turns against a small image, with requests still on the thread pool when the driver resets.
 * Besides the sanitizers, the device must never write the descriptor table or the avail ring. */
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../unit/virtio_fake.h"
#include "fuzz_driver.h"
#include "kiln/devices/virtio_blk.h"

#define MAX_OPS    64
#define DISK_BYTES (64 * 512)

struct harness {
    struct fuzz_driver drv;
    struct log log;
    struct disk_config disk;
    uv_loop_t loop;
    struct virtio_blk *blk;
    struct virtio_mmio t;
};

static char image_path[64];

static void remove_image(void)
{
    unlink(image_path);
}

static void bring_up(struct harness *h, uint8_t features)
{
    drv_bring_up(&h->drv, &h->t,
                 (1u << VIRTIO_BLK_F_FLUSH) | (1u << VIRTIO_BLK_F_DISCARD) |
                     (1u << VIRTIO_BLK_F_WRITE_ZEROES) | (1u << VIRTIO_BLK_F_CONFIG_WCE),
                 features, 1);
}

static void open_device(struct harness *h, uint8_t features)
{
    h->disk = (struct disk_config){.path = image_path,
                                   .readonly = features & 1,
                                   .cache = DISK_CACHE_UNSAFE,
                                   .queue_size = DRV_QSIZE};
    uv_loop_init(&h->loop);
    if (virtio_blk_create(&h->blk, &h->disk, &h->loop, &h->drv.mem, &h->log, NULL) < 0)
        abort();
    struct virtio_mmio_host host = drv_host();
    virtio_mmio_init(&h->t, virtio_blk_dev(h->blk), &host, 0xd0000000);
    h->drv.dev = h->t.dev;
    bring_up(h, features);
}

static void close_device(struct harness *h)
{
    uv_run(&h->loop, UV_RUN_DEFAULT); /* requests still on the thread pool come back */
    virtio_blk_destroy(h->blk);
    uv_loop_close(&h->loop);
}

/* Input: [0] bit 0 read-only disk, bit 1 INDIRECT_DESC, bit 2 EVENT_IDX; then 8-byte ops,
 * [0] % 7: 0 descriptor, 1-2 avail entry, 3 doorbell, 4 one loop turn (completions),
 * 5 loop until idle, 6 driver reset and bring-up again; [0] 0xE0-0xE7 a driver store,
 * 0xE8-0xEF a live reconfiguration (fuzz_driver.h has the op bytes). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct harness h;
    if (!image_path[0]) {
        snprintf(image_path, sizeof(image_path), "/tmp/kiln-fuzz-blk-%d.img", (int)getpid());
        int fd = open(image_path, O_CREAT | O_TRUNC | O_RDWR, 0600);
        if (fd < 0 || ftruncate(fd, DISK_BYTES) < 0)
            abort();
        close(fd);
        atexit(remove_image);
    }
    uint8_t features;
    if (!drv_start(&h.drv, &h.log, &data, &size, &features))
        return 0;
    open_device(&h, features);
    for (unsigned n = 0; size >= 8 && n < MAX_OPS; n++, data += 8, size -= 8) {
        if (drv_live_op(&h.drv, &h.t, data))
            continue;
        if (drv_ring_op(&h.drv, data[0] % 7, 1, data))
            continue;
        drv_snapshot(&h.drv);
        switch (data[0] % 7) {
        case 3:
            virtio_dev_handle_notify(h.t.dev, 0);
            break;
        case 4:
            uv_run(&h.loop, UV_RUN_NOWAIT);
            break;
        case 5:
            uv_run(&h.loop, UV_RUN_DEFAULT);
            break;
        default:
            fake_mmio_write(&h.t, VIRTIO_MMIO_STATUS, 0);
            uv_run(&h.loop, UV_RUN_NOWAIT);
            bring_up(&h, features);
            continue;
        }
        drv_check(&h.drv);
    }
    drv_snapshot(&h.drv);
    virtio_dev_handle_notify(h.t.dev, 0);
    uv_run(&h.loop, UV_RUN_DEFAULT);
    drv_check(&h.drv);
    close_device(&h);
    return 0;
}
