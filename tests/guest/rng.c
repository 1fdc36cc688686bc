/* rng.elf: reads entropy from the first virtio-rng device (virtio_mmio.device= on the command
 * line) twice and checks it looks random: the buffers are filled, differ, and are not zero. */
#include "runtime/guest.h"
#include "runtime/virtio.h"

static struct virtq vq;
static struct virtio_dev dev;
static uint8_t buf[2][64];

static int fetch(uint8_t *out)
{
    vq.desc[0] = (struct vq_desc){(uint64_t)(uintptr_t)out, 64, VQ_DESC_WRITE, 0};
    return (int)virtio_submit_and_wait(&dev, &vq, 0);
}

int guest_main(void)
{
    if (virtio_find(4, 0, &dev) < 0 || virtio_setup(&dev, 0, &vq) < 0) {
        puts("rng: FAIL: no usable virtio-rng device");
        return GUEST_EXIT_FAIL;
    }
    virtio_driver_ok(&dev);
    int a = fetch(buf[0]), b = fetch(buf[1]);
    unsigned zeroes = 0;
    for (unsigned i = 0; i < 64; i++)
        zeroes += buf[0][i] == 0;
    if (a != 64 || b != 64 || memcmp(buf[0], buf[1], 64) == 0 || zeroes > 8) {
        printf("rng: FAIL: got %d and %d bytes, %u zero bytes\n", a, b, zeroes);
        return GUEST_EXIT_FAIL;
    }
    printf("rng: 2 x 64 random bytes, first %02x%02x%02x%02x\n", buf[0][0], buf[0][1], buf[0][2],
           buf[0][3]);
    return GUEST_EXIT_PASS;
}
