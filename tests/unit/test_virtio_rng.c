/* Unit tests for virtio-rng on a real transport without KVM: requests are answered with random
 * bytes, a budget of them per doorbell, so one full queue cannot hold the event loop. */
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "kiln/devices/virtio_rng.h"
#include "virtio_fake.h"

#define Q_DESC  0x10000ULL
#define Q_AVAIL 0x12000ULL
#define Q_USED  0x13000ULL
#define BUF     0x100000ULL

static struct {
    struct guest_mem mem;
    struct log log;
    struct virtio_rng rng;
    struct virtio_mmio t;
    unsigned kicks; /* the device asking the loop to come back to its queue */
} fx;

static void no_irq(void *opaque)
{
}
static void count_kick(void *opaque, unsigned q)
{
    fx.kicks++;
}

static void *gpa(uint64_t a)
{
    return guest_mem_ptr(&fx.mem, a, 1);
}

static int setup(void **state)
{
    memset(&fx, 0, sizeof(fx));
    fx.log.level = LOG_ERROR;
    fx.log.out = fopen("/dev/null", "w");
    if (guest_mem_init(&fx.mem, FAKE_RAM, NULL) < 0 ||
        virtio_rng_init(&fx.rng, &fx.mem, &fx.log, NULL) < 0)
        return -1;
    struct virtio_mmio_host host = {.raise_irq = no_irq, .kick = count_kick};
    virtio_mmio_init(&fx.t, &fx.rng.vdev, &host, 0xd0000000);
    uint32_t s = fake_mmio_negotiate(&fx.t, 0);
    fake_mmio_queue(&fx.t, 0, Q_DESC, Q_AVAIL, Q_USED);
    fake_mmio_write(&fx.t, VIRTIO_MMIO_STATUS, s | VIRTIO_CONFIG_S_DRIVER_OK);
    fx.kicks = 0; /* DRIVER_OK kicks every ready queue once */
    return 0;
}

static int teardown(void **state)
{
    virtio_rng_destroy(&fx.rng);
    guest_mem_destroy(&fx.mem);
    fclose(fx.log.out);
    return 0;
}

/* Issue #15: one doorbell served every request in the queue, up to 64 KiB each. Now it serves
 * a budget's worth (8), asks the loop to come back (a kick), and the next turn serves the rest. */
static void test_one_doorbell_serves_a_budget_of_requests(void **state)
{
    const unsigned requests = 12;
    struct vring_avail *avail = gpa(Q_AVAIL);
    for (unsigned i = 0; i < requests; i++) {
        struct vring_desc d = {.addr = BUF + i * 0x100, .len = 32, .flags = VRING_DESC_F_WRITE};
        memcpy((uint8_t *)gpa(Q_DESC) + i * sizeof(d), &d, sizeof(d));
        avail->ring[i] = (uint16_t)i;
    }
    avail->idx = (uint16_t)requests;
    struct vring_used *used = gpa(Q_USED);
    virtio_dev_handle_notify(&fx.rng.vdev, 0);
    assert_int_equal(used->idx, 8);
    assert_int_equal(fx.kicks, 1);
    virtio_dev_handle_notify(&fx.rng.vdev, 0); /* the kick's doorbell */
    assert_int_equal(used->idx, requests);
    for (unsigned i = 0; i < requests; i++)
        assert_int_equal(used->ring[i].len, 32);
    assert_int_equal(virtio_rng_bytes_served(&fx.rng), 32 * requests);
    assert_int_equal(used->flags, 0); /* drained: doorbells wanted again */
    assert_int_equal(fx.kicks, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_doorbell_serves_a_budget_of_requests, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
