/* Unit tests for the virtio-mmio transport: every register, feature negotiation in 32-bit
 * pages, the status machine and reset, queue set-up, notify and interrupt status, config
 * space bounds — driven through the bus accessors as a guest driver would. */
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "kiln/virtio/virtio_mmio.h"
#include "virtio_fake.h"

#define DEVICE_FEATURE_BIT 5 /* a device-specific feature the fake offers */

struct fake_device {
    uint8_t config[12];
    unsigned activated, notified, resets, irqs, kicks;
    unsigned last_kick;
};

static struct fake_device dev;
static struct virtio_dev vdev;
static struct virtio_mmio t;
static struct guest_mem mem;
static struct log quiet_log;

static void fake_config_read(struct virtio_dev *tr, uint32_t offset, uint8_t *data, unsigned size)
{
    memcpy(data, dev.config + offset, size);
}

static void fake_config_write(struct virtio_dev *tr, uint32_t offset, const uint8_t *data,
                              unsigned size)
{
    memcpy(dev.config + offset, data, size);
}

static void fake_activate(struct virtio_dev *tr)
{
    dev.activated++;
}
static void fake_notify(struct virtio_dev *tr, unsigned q)
{
    dev.notified++;
}
static void fake_reset(struct virtio_dev *tr)
{
    dev.resets++;
}
static void record_irq(void *opaque)
{
    dev.irqs++;
}

static void record_kick(void *opaque, unsigned q)
{
    dev.kicks++;
    dev.last_kick = q;
}

static const struct virtio_dev_ops fake_ops = {
    .config_read = fake_config_read,
    .config_write = fake_config_write,
    .activate = fake_activate,
    .queue_notify = fake_notify,
    .reset = fake_reset,
};

static int setup(void **state)
{
    memset(&dev, 0, sizeof(dev));
    for (unsigned i = 0; i < sizeof(dev.config); i++)
        dev.config[i] = (uint8_t)(0xa0 + i);
    quiet_log.level = LOG_ERROR;
    quiet_log.out = fopen("/dev/null", "w");
    if (guest_mem_init(&mem, FAKE_RAM, NULL) < 0)
        return -1;
    struct virtio_device_info info = {
        .name = "fake",
        .device_id = 42,
        .features = 1ULL << DEVICE_FEATURE_BIT,
        .num_queues = 2,
        .queue_max_size = 64,
        .config_size = sizeof(dev.config),
        .ops = &fake_ops,
    };
    struct virtio_mmio_host host = {.raise_irq = record_irq, .kick = record_kick};
    if (virtio_dev_init(&vdev, &info, &mem, &quiet_log, NULL) < 0)
        return -1;
    virtio_mmio_init(&t, &vdev, &host, 0xd0000000);
    return 0;
}

static int teardown(void **state)
{
    virtio_dev_destroy(&vdev);
    guest_mem_destroy(&mem);
    fclose(quiet_log.out);
    return 0;
}

static uint32_t rd(uint64_t offset)
{
    uint32_t v;
    virtio_mmio_bus_ops.read(&t, offset, (uint8_t *)&v, 4);
    return v;
}

static void wr(uint64_t offset, uint32_t v)
{
    virtio_mmio_bus_ops.write(&t, offset, (const uint8_t *)&v, 4);
}

static void negotiate(uint64_t features)
{
    wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
    wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
    wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
    wr(VIRTIO_MMIO_STATUS,
       VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
}

#define V1 (1ULL << VIRTIO_F_VERSION_1)
#define S_UP_TO_FEATURES                                                                           \
    (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK)

static void setup_queue(unsigned q, uint32_t size)
{
    wr(VIRTIO_MMIO_QUEUE_SEL, q);
    wr(VIRTIO_MMIO_QUEUE_NUM, size);
    wr(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)FAKE_DESC);
    wr(VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
    wr(VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)FAKE_AVAIL);
    wr(VIRTIO_MMIO_QUEUE_AVAIL_HIGH, 0);
    wr(VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)FAKE_USED);
    wr(VIRTIO_MMIO_QUEUE_USED_HIGH, 0);
    wr(VIRTIO_MMIO_QUEUE_READY, 1);
}

static void test_identity_registers(void **state)
{
    assert_int_equal(rd(VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
    assert_int_equal(rd(VIRTIO_MMIO_VERSION), 2);
    assert_int_equal(rd(VIRTIO_MMIO_DEVICE_ID), 42);
    assert_int_equal(rd(VIRTIO_MMIO_VENDOR_ID), KILN_VIRTIO_VENDOR_ID);
    assert_int_equal(rd(VIRTIO_MMIO_STATUS), 0);
    assert_int_equal(rd(VIRTIO_MMIO_CONFIG_GENERATION), 0);
    /* No shared memory regions: length -1 for any id. */
    wr(VIRTIO_MMIO_SHM_SEL, 0);
    assert_int_equal(rd(VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffff);
    assert_int_equal(rd(VIRTIO_MMIO_SHM_LEN_HIGH), 0xffffffff);
}

static void test_feature_pages(void **state)
{
    wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    uint32_t low = rd(VIRTIO_MMIO_DEVICE_FEATURES);
    assert_true(low & (1u << DEVICE_FEATURE_BIT));
    assert_true(low & (1u << VIRTIO_RING_F_INDIRECT_DESC));
    assert_true(low & (1u << VIRTIO_RING_F_EVENT_IDX));
    wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    assert_int_equal(rd(VIRTIO_MMIO_DEVICE_FEATURES), 1u << (VIRTIO_F_VERSION_1 - 32));
    wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
    assert_int_equal(rd(VIRTIO_MMIO_DEVICE_FEATURES), 0);
}

static void test_negotiation_accepts_a_subset_with_version_1(void **state)
{
    negotiate(V1 | (1ULL << DEVICE_FEATURE_BIT));
    assert_int_equal(rd(VIRTIO_MMIO_STATUS), S_UP_TO_FEATURES);
    assert_true(virtio_dev_feature(t.dev, DEVICE_FEATURE_BIT));
    assert_false(virtio_dev_feature(t.dev, VIRTIO_RING_F_EVENT_IDX));
}

static void test_negotiation_refuses_legacy_and_unoffered(void **state)
{
    negotiate(1ULL << DEVICE_FEATURE_BIT); /* no VERSION_1: a legacy driver */
    assert_int_equal(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK, 0);
    wr(VIRTIO_MMIO_STATUS, 0);
    negotiate(V1 | (1ULL << 7)); /* bit 7 was not offered */
    assert_int_equal(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK, 0);
}

static void test_features_frozen_after_features_ok(void **state)
{
    negotiate(V1);
    wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    wr(VIRTIO_MMIO_DRIVER_FEATURES, 1u << DEVICE_FEATURE_BIT);
    assert_false(virtio_dev_feature(t.dev, DEVICE_FEATURE_BIT));
}

static void test_status_machine_order(void **state)
{
    wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                               VIRTIO_CONFIG_S_DRIVER_OK); /* DRIVER_OK before FEATURES_OK */
    assert_int_equal(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_DRIVER_OK, 0);
    assert_int_equal(dev.activated, 0);
    wr(VIRTIO_MMIO_STATUS, 0);
    negotiate(V1);
    wr(VIRTIO_MMIO_STATUS, S_UP_TO_FEATURES | VIRTIO_CONFIG_S_DRIVER_OK);
    assert_int_equal(dev.activated, 1);
    /* Clearing bits without a reset is ignored. */
    wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
    assert_int_equal(rd(VIRTIO_MMIO_STATUS), S_UP_TO_FEATURES | VIRTIO_CONFIG_S_DRIVER_OK);
    wr(VIRTIO_MMIO_STATUS, S_UP_TO_FEATURES | VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_FAILED);
    assert_true(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FAILED);
    virtio_dev_handle_notify(t.dev, 0); /* a failed device ignores the doorbell */
    assert_int_equal(dev.notified, 0);
}

static void test_queue_setup_and_notify(void **state)
{
    negotiate(V1);
    wr(VIRTIO_MMIO_QUEUE_SEL, 1);
    assert_int_equal(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), 64);
    wr(VIRTIO_MMIO_QUEUE_SEL, 2); /* no such queue */
    assert_int_equal(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
    setup_queue(0, 32);
    assert_int_equal(rd(VIRTIO_MMIO_QUEUE_READY), 1);
    assert_int_equal(t.dev->queues[0].size, 32);
    assert_int_equal(t.dev->queues[0].desc_gpa, FAKE_DESC);

    virtio_dev_handle_notify(t.dev, 0); /* not DRIVER_OK yet */
    assert_int_equal(dev.notified, 0);
    wr(VIRTIO_MMIO_STATUS, S_UP_TO_FEATURES | VIRTIO_CONFIG_S_DRIVER_OK);
    assert_int_equal(dev.kicks, 1); /* DRIVER_OK looks at every ready queue once */
    virtio_dev_handle_notify(t.dev, 0);
    assert_int_equal(dev.notified, 1);
    virtio_dev_handle_notify(t.dev, 1); /* queue 1 is not ready */
    virtio_dev_handle_notify(t.dev, 7); /* no such queue */
    assert_int_equal(dev.notified, 1);

    /* A QueueNotify write that reached the bus goes to the doorbell, not the device. */
    wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    assert_int_equal(dev.kicks, 2);
    assert_int_equal(dev.last_kick, 0);
    wr(VIRTIO_MMIO_QUEUE_NOTIFY, 9);
    assert_int_equal(dev.kicks, 2);

    /* Set-up registers are frozen while the queue is ready. */
    wr(VIRTIO_MMIO_QUEUE_SEL, 0);
    wr(VIRTIO_MMIO_QUEUE_NUM, 8);
    assert_int_equal(t.dev->queues[0].size, 32);
}

static void test_bad_queue_sets_needs_reset(void **state)
{
    negotiate(V1);
    wr(VIRTIO_MMIO_STATUS, S_UP_TO_FEATURES | VIRTIO_CONFIG_S_DRIVER_OK);
    setup_queue(0, 100); /* not a power of 2 */
    assert_int_equal(rd(VIRTIO_MMIO_QUEUE_READY), 0);
    assert_true(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
    assert_true(rd(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
    assert_int_equal(t.dev->device_errors, 1);
    wr(VIRTIO_MMIO_STATUS, 0);
    assert_int_equal(rd(VIRTIO_MMIO_STATUS), 0);
}

static void test_queue_ready_needs_features_ok(void **state)
{
    wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    setup_queue(0, 16);
    assert_int_equal(rd(VIRTIO_MMIO_QUEUE_READY), 0);
}

static void test_reset_clears_everything(void **state)
{
    negotiate(V1 | (1ULL << VIRTIO_RING_F_EVENT_IDX));
    setup_queue(0, 16);
    wr(VIRTIO_MMIO_STATUS, S_UP_TO_FEATURES | VIRTIO_CONFIG_S_DRIVER_OK);
    virtio_dev_notify_used(t.dev, 0);
    assert_int_not_equal(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    uint32_t generation = virtio_dev_generation(t.dev);
    wr(VIRTIO_MMIO_STATUS, 0);
    assert_int_equal(dev.resets, 1);
    assert_int_equal(rd(VIRTIO_MMIO_STATUS), 0);
    assert_int_equal(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    assert_int_equal(rd(VIRTIO_MMIO_QUEUE_READY), 0);
    assert_int_equal(t.dev->driver_features, 0);
    assert_int_equal(t.dev->queues[0].size, 64); /* back to QueueNumMax */
    assert_int_not_equal(virtio_dev_generation(t.dev), generation);
}

static void test_interrupt_status_and_ack(void **state)
{
    negotiate(V1);
    setup_queue(0, 16);
    wr(VIRTIO_MMIO_STATUS, S_UP_TO_FEATURES | VIRTIO_CONFIG_S_DRIVER_OK);
    virtio_dev_notify_used(t.dev, 0);
    assert_int_equal(dev.irqs, 1);
    assert_int_equal(rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
    virtio_dev_config_changed(t.dev);
    assert_int_equal(dev.irqs, 2);
    assert_int_equal(rd(VIRTIO_MMIO_CONFIG_GENERATION), 1);
    assert_int_equal(rd(VIRTIO_MMIO_INTERRUPT_STATUS),
                     VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG);
    wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
    assert_int_equal(rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
    wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);
    assert_int_equal(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    /* With VRING_AVAIL_F_NO_INTERRUPT the driver gets no used-buffer interrupt. */
    struct vring_avail *avail = guest_mem_ptr(&mem, FAKE_AVAIL, 4);
    avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
    virtio_dev_notify_used(t.dev, 0);
    assert_int_equal(dev.irqs, 2);
}

static void test_config_space(void **state)
{
    uint8_t b[8];
    virtio_mmio_bus_ops.read(&t, VIRTIO_MMIO_CONFIG + 2, b, 1);
    assert_int_equal(b[0], 0xa2);
    virtio_mmio_bus_ops.read(&t, VIRTIO_MMIO_CONFIG + 4, b, 8);
    assert_int_equal(b[7], 0xab);
    virtio_mmio_bus_ops.read(&t, VIRTIO_MMIO_CONFIG + 10, b, 4); /* runs past the end */
    assert_int_equal(b[0] | b[1] | b[2] | b[3], 0);
    const uint8_t v = 0x55;
    virtio_mmio_bus_ops.write(&t, VIRTIO_MMIO_CONFIG + 1, &v, 1);
    assert_int_equal(dev.config[1], 0x55);
    virtio_mmio_bus_ops.write(&t, VIRTIO_MMIO_CONFIG + 12, &v, 1);
    assert_int_equal(t.bad_access_logged, true);
}

static void test_misused_registers_are_ignored(void **state)
{
    uint8_t b[2] = {0xff, 0xff};
    virtio_mmio_bus_ops.read(&t, VIRTIO_MMIO_MAGIC_VALUE, b, 2); /* not 32 bits wide */
    assert_int_equal(b[0] | b[1], 0);
    virtio_mmio_bus_ops.write(&t, VIRTIO_MMIO_STATUS, b, 1);
    assert_int_equal(rd(VIRTIO_MMIO_STATUS), 0);
    wr(VIRTIO_MMIO_MAGIC_VALUE, 0); /* read-only */
    assert_int_equal(rd(VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
    assert_int_equal(rd(VIRTIO_MMIO_QUEUE_NOTIFY), 0); /* write-only */
    assert_int_equal(rd(0x0f8), 0);                    /* no register */
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_identity_registers),
        T(test_feature_pages),
        T(test_negotiation_accepts_a_subset_with_version_1),
        T(test_negotiation_refuses_legacy_and_unoffered),
        T(test_features_frozen_after_features_ok),
        T(test_status_machine_order),
        T(test_queue_setup_and_notify),
        T(test_bad_queue_sets_needs_reset),
        T(test_queue_ready_needs_features_ok),
        T(test_reset_clears_everything),
        T(test_interrupt_status_and_ack),
        T(test_config_space),
        T(test_misused_registers_are_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
