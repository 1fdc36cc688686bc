/* Unit tests for virtio-rng on a real transport without KVM: requests are answered with random
 * bytes, a budget of them per doorbell, so one full queue cannot hold the event loop; a rate
 * limit holds requests in the ring until a loop timer says their tokens are there. */
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

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

/* 20 requests a second in a bucket of 2: two are served at once, the rest wait in the ring
 * (doorbells do nothing, and ask for none) until the throttle's timer kicks the queue, one
 * every 50 ms; removing the limit frees the rest at the loop's next turn. */
static void test_rate_limit_holds_requests_in_the_ring(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct error err;
    assert_int_equal(virtio_rng_attach(&fx.rng, &loop, &err), 0);
    struct rate_limit_config limit = {.ops = {.size = 2, .refill_time_ms = 100}};
    assert_int_equal(virtio_rng_set_limit(&fx.rng, &limit, &err), 0);
    const unsigned requests = 8;
    struct vring_avail *avail = gpa(Q_AVAIL);
    for (unsigned i = 0; i < requests; i++) {
        struct vring_desc d = {.addr = BUF + i * 0x100, .len = 32, .flags = VRING_DESC_F_WRITE};
        memcpy((uint8_t *)gpa(Q_DESC) + i * sizeof(d), &d, sizeof(d));
        avail->ring[i] = (uint16_t)i;
    }
    avail->idx = (uint16_t)requests;
    struct vring_used *used = gpa(Q_USED);
    uint64_t start = uv_hrtime();
    virtio_dev_handle_notify(&fx.rng.vdev, 0);
    assert_int_equal(used->idx, 2);
    assert_int_equal(used->flags, VRING_USED_F_NO_NOTIFY); /* no doorbells while it waits */
    virtio_dev_handle_notify(&fx.rng.vdev, 0);
    assert_int_equal(used->idx, 2);
    assert_int_equal(fx.kicks, 0);
    /* The loop's timer kicks the queue; the test's transport only counts kicks, so it rings. */
    while (used->idx < 5) {
        unsigned kicks = fx.kicks;
        uv_run(&loop, UV_RUN_ONCE);
        assert_int_equal(fx.kicks, kicks + 1);
        virtio_dev_handle_notify(&fx.rng.vdev, 0);
    }
    uint64_t ms = (uv_hrtime() - start) / 1000000;
    assert_in_range(ms, 145, 1000); /* three more tokens: 150 ms, less the clock's rounding */
    struct io_throttle_counters c;
    io_throttle_read_counters(&fx.rng.throttle, &c);
    assert_in_range(c.throttled, 4, 10); /* 4: the first wait, then one a kick (more if early) */
    assert_in_range(c.throttled_ms, 140, 1000);

    struct rate_limit_config none = {.bytes = {0}, .ops = {0}};
    assert_int_equal(virtio_rng_set_limit(&fx.rng, &none, &err), 0);
    uv_run(&loop, UV_RUN_ONCE);
    virtio_dev_handle_notify(&fx.rng.vdev, 0);
    assert_int_equal(used->idx, requests);
    assert_int_equal(virtio_rng_bytes_served(&fx.rng), 32 * requests);
    assert_int_equal(used->flags, 0);

    virtio_rng_detach(&fx.rng);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_doorbell_serves_a_budget_of_requests, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit_holds_requests_in_the_ring, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
