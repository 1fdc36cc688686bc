/* Spec-boundary unit tests for the virtio-mmio transport (virtio 1.2 §4.2), beside the
 * everyday cases in test_virtio_transport.c: read-only and misused registers, SHM, feature
 * pages past 64 bits, queue sizes and addresses, re-initialisation after reset, config bounds. */
#include <errno.h>
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

#define CONFIG_SIZE 10
#define QUEUE_MAX   64
#define V1          (1ULL << VIRTIO_F_VERSION_1)
#define S_FEATURES                                                                                 \
    (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK)

/* A device model that records what the transport asks of it. */
struct recorder {
    uint8_t config[CONFIG_SIZE];
    unsigned config_reads, config_writes, activated, notified, resets, irqs, kicks;
    uint32_t last_offset, last_size;
    uint64_t features_at_activate;
    unsigned last_notify_queue;
};

struct fixture {
    struct guest_mem mem;
    struct virtio_dev vdev;
    struct virtio_mmio t;
    struct recorder dev;
    struct log log;
};

static struct fixture fx;

static void rec_config_read(struct virtio_dev *d, uint32_t offset, uint8_t *data, unsigned size)
{
    struct recorder *r = &fx.dev;
    assert_true(offset + size <= CONFIG_SIZE); /* the transport's promise */
    r->config_reads++;
    r->last_offset = offset;
    r->last_size = size;
    memcpy(data, r->config + offset, size);
}

static void rec_config_write(struct virtio_dev *d, uint32_t offset, const uint8_t *data,
                             unsigned size)
{
    struct recorder *r = &fx.dev;
    assert_true(offset + size <= CONFIG_SIZE);
    r->config_writes++;
    memcpy(r->config + offset, data, size);
}

static void rec_activate(struct virtio_dev *d)
{
    struct recorder *r = &fx.dev;
    r->activated++;
    r->features_at_activate = d->driver_features;
}

static void rec_notify(struct virtio_dev *d, unsigned q)
{
    struct recorder *r = &fx.dev;
    r->notified++;
    r->last_notify_queue = q;
}

static void rec_reset(struct virtio_dev *d)
{
    struct recorder *r = &fx.dev;
    r->resets++;
}

static void rec_irq(void *opaque)
{
    ((struct recorder *)opaque)->irqs++;
}

static void rec_kick(void *opaque, unsigned q)
{
    ((struct recorder *)opaque)->kicks++;
}

static const struct virtio_dev_ops rec_ops = {
    .config_read = rec_config_read,
    .config_write = rec_config_write,
    .activate = rec_activate,
    .queue_notify = rec_notify,
    .reset = rec_reset,
};

static struct virtio_device_info rec_info(void)
{
    return (struct virtio_device_info){
        .name = "recorder",
        .device_id = 4, /* VIRTIO_ID_RNG: any real id */
        .features = 1ULL << 3,
        .num_queues = 2,
        .queue_max_size = QUEUE_MAX,
        .config_size = CONFIG_SIZE,
        .ops = &rec_ops,
    };
}

static int setup_with_ram(uint64_t ram)
{
    memset(&fx, 0, sizeof(fx));
    for (unsigned i = 0; i < CONFIG_SIZE; i++)
        fx.dev.config[i] = (uint8_t)(0x10 + i);
    fx.log.level = LOG_ERROR;
    fx.log.out = fopen("/dev/null", "w");
    if (!fx.log.out || guest_mem_init(&fx.mem, ram, NULL) < 0)
        return -1;
    struct virtio_device_info info = rec_info();
    struct virtio_mmio_host host = {.raise_irq = rec_irq, .kick = rec_kick, .opaque = &fx.dev};
    if (virtio_dev_init(&fx.vdev, &info, &fx.mem, &fx.log, NULL) < 0)
        return -1;
    virtio_mmio_init(&fx.t, &fx.vdev, &host, 0xd0000000);
    return 0;
}

static int setup(void **state)
{
    return setup_with_ram(FAKE_RAM);
}

static int setup_big(void **state)
{
    /* RAM on both sides of the MMIO hole: 3 GiB below, 2 MiB from 4 GiB. */
    return setup_with_ram(GUEST_MMIO_HOLE_START + (2 << 20));
}

static int teardown(void **state)
{
    virtio_dev_destroy(&fx.vdev);
    guest_mem_destroy(&fx.mem);
    fclose(fx.log.out);
    return 0;
}

static uint32_t rd(uint64_t offset)
{
    uint32_t v = 0xcccccccc;
    virtio_mmio_bus_ops.read(&fx.t, offset, (uint8_t *)&v, 4);
    return v;
}

static void wr(uint64_t offset, uint32_t v)
{
    virtio_mmio_bus_ops.write(&fx.t, offset, (const uint8_t *)&v, 4);
}

static void write_features(uint64_t features)
{
    wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
    wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
}

/* Status up to FEATURES_OK with these features; returns what the device left in Status. */
static uint32_t negotiate(uint64_t features)
{
    wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
    wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    write_features(features);
    wr(VIRTIO_MMIO_STATUS, S_FEATURES);
    return rd(VIRTIO_MMIO_STATUS);
}

static void queue_addresses(uint64_t desc, uint64_t avail, uint64_t used)
{
    wr(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
    wr(VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
    wr(VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)avail);
    wr(VIRTIO_MMIO_QUEUE_AVAIL_HIGH, (uint32_t)(avail >> 32));
    wr(VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)used);
    wr(VIRTIO_MMIO_QUEUE_USED_HIGH, (uint32_t)(used >> 32));
}

/* Sets up queue q as a driver would (§4.2.3.2); returns QueueReady as read back. */
static uint32_t setup_queue(unsigned q, uint32_t size, uint64_t desc, uint64_t avail, uint64_t used)
{
    wr(VIRTIO_MMIO_QUEUE_SEL, q);
    wr(VIRTIO_MMIO_QUEUE_NUM, size);
    queue_addresses(desc, avail, used);
    wr(VIRTIO_MMIO_QUEUE_READY, 1);
    return rd(VIRTIO_MMIO_QUEUE_READY);
}

static void driver_ok(void)
{
    wr(VIRTIO_MMIO_STATUS, S_FEATURES | VIRTIO_CONFIG_S_DRIVER_OK);
}

/* §4.2.2.2: the driver MUST NOT write read-only registers; a device ignores such writes. */
static void test_read_only_registers_ignore_writes(void **state)
{
    static const uint64_t read_only[] = {
        VIRTIO_MMIO_MAGIC_VALUE,      VIRTIO_MMIO_VERSION,           VIRTIO_MMIO_DEVICE_ID,
        VIRTIO_MMIO_VENDOR_ID,        VIRTIO_MMIO_DEVICE_FEATURES,   VIRTIO_MMIO_QUEUE_NUM_MAX,
        VIRTIO_MMIO_INTERRUPT_STATUS, VIRTIO_MMIO_CONFIG_GENERATION, VIRTIO_MMIO_SHM_LEN_LOW,
        VIRTIO_MMIO_SHM_LEN_HIGH,     VIRTIO_MMIO_SHM_BASE_LOW,      VIRTIO_MMIO_SHM_BASE_HIGH,
    };
    negotiate(V1);
    driver_ok();
    virtio_dev_config_changed(fx.t.dev); /* InterruptStatus = config, generation 1 */
    uint32_t before[sizeof(read_only) / sizeof(read_only[0])];
    for (unsigned i = 0; i < sizeof(read_only) / sizeof(read_only[0]); i++)
        before[i] = rd(read_only[i]);
    for (unsigned i = 0; i < sizeof(read_only) / sizeof(read_only[0]); i++) {
        wr(read_only[i], 0);
        wr(read_only[i], 0x5a5a5a5a);
    }
    for (unsigned i = 0; i < sizeof(read_only) / sizeof(read_only[0]); i++)
        assert_int_equal(rd(read_only[i]), before[i]);
    assert_int_equal(rd(VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
    assert_int_equal(rd(VIRTIO_MMIO_VERSION), 2);
    assert_int_equal(rd(VIRTIO_MMIO_DEVICE_ID), 4);
    assert_int_equal(rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
    assert_int_equal(rd(VIRTIO_MMIO_CONFIG_GENERATION), 1);
    assert_int_equal(rd(VIRTIO_MMIO_STATUS), S_FEATURES | VIRTIO_CONFIG_S_DRIVER_OK);
    assert_int_equal(fx.dev.resets, 0);
}

/* §4.2.2.2: only 32-bit wide, aligned register accesses; anything else is ignored. */
static void test_register_accesses_not_32_bits_wide(void **state)
{
    uint8_t b[8];
    memset(b, 0xff, sizeof(b));
    virtio_mmio_bus_ops.read(&fx.t, VIRTIO_MMIO_DEVICE_FEATURES, b, 8);
    for (unsigned i = 0; i < 8; i++)
        assert_int_equal(b[i], 0);
    memset(b, 0xff, sizeof(b));
    virtio_mmio_bus_ops.read(&fx.t, VIRTIO_MMIO_MAGIC_VALUE + 1, b, 4); /* unaligned */
    assert_int_equal(b[0] | b[1] | b[2] | b[3], 0);

    const uint16_t one = 1;
    virtio_mmio_bus_ops.write(&fx.t, VIRTIO_MMIO_QUEUE_SEL, (const uint8_t *)&one, 2);
    assert_int_equal(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), QUEUE_MAX); /* still queue 0 */
    const uint32_t ack = VIRTIO_CONFIG_S_ACKNOWLEDGE;
    virtio_mmio_bus_ops.write(&fx.t, VIRTIO_MMIO_STATUS + 2, (const uint8_t *)&ack, 4);
    assert_int_equal(rd(VIRTIO_MMIO_STATUS), 0);
    wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
    const uint8_t zero = 0;
    virtio_mmio_bus_ops.write(&fx.t, VIRTIO_MMIO_STATUS, &zero, 1); /* not a reset */
    assert_int_equal(rd(VIRTIO_MMIO_STATUS), VIRTIO_CONFIG_S_ACKNOWLEDGE);
    assert_int_equal(fx.dev.resets, 0);
}

/* §4.2.2 table: for a region id that is not used, length -1 and base 0xffffffffffffffff. */
static void test_no_shared_memory_regions(void **state)
{
    static const uint32_t ids[] = {0, 1, 255, 0xffffffff};
    for (unsigned i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        wr(VIRTIO_MMIO_SHM_SEL, ids[i]);
        assert_int_equal(rd(VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffff);
        assert_int_equal(rd(VIRTIO_MMIO_SHM_LEN_HIGH), 0xffffffff);
        assert_int_equal(rd(VIRTIO_MMIO_SHM_BASE_LOW), 0xffffffff);
        assert_int_equal(rd(VIRTIO_MMIO_SHM_BASE_HIGH), 0xffffffff);
    }
}

static void test_device_features_pages(void **state)
{
    wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    uint32_t low = rd(VIRTIO_MMIO_DEVICE_FEATURES);
    assert_int_equal(low & (1u << 3), 1u << 3); /* the device's own bit */
    wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    assert_true(rd(VIRTIO_MMIO_DEVICE_FEATURES) & (1u << (VIRTIO_F_VERSION_1 - 32)));
    for (uint32_t sel = 2; sel < 6; sel++) {
        wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, sel);
        assert_int_equal(rd(VIRTIO_MMIO_DEVICE_FEATURES), 0);
    }
    wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0xffffffff);
    assert_int_equal(rd(VIRTIO_MMIO_DEVICE_FEATURES), 0);
    wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0); /* the selector reads back the same page */
    assert_int_equal(rd(VIRTIO_MMIO_DEVICE_FEATURES), low);
}

/* §2.2.2: the device MUST fail FEATURES_OK for a set it does not accept; bits beyond the 64
 * it offers (DriverFeaturesSel >= 2) were not offered either. Zeros there are harmless. */
static void test_features_beyond_64_bits(void **state)
{
    wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    write_features(V1);
    wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 2);
    wr(VIRTIO_MMIO_DRIVER_FEATURES, 0);
    wr(VIRTIO_MMIO_STATUS, S_FEATURES);
    assert_int_equal(rd(VIRTIO_MMIO_STATUS), S_FEATURES);

    wr(VIRTIO_MMIO_STATUS, 0);
    wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    write_features(V1);
    wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 2);
    wr(VIRTIO_MMIO_DRIVER_FEATURES, 1); /* accepts feature bit 64 */
    wr(VIRTIO_MMIO_STATUS, S_FEATURES);
    assert_int_equal(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK, 0);
}

/* A driver may rewrite its feature subset before FEATURES_OK (§3.1.1 step 4 allows
 * validating and changing it); the last write counts. */
static void test_features_rewritten_before_features_ok(void **state)
{
    wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    write_features(V1 | (1ULL << 7)); /* 7 is not offered */
    write_features(V1 | (1ULL << 3));
    wr(VIRTIO_MMIO_STATUS, S_FEATURES);
    assert_int_equal(rd(VIRTIO_MMIO_STATUS), S_FEATURES);
    driver_ok();
    assert_int_equal(fx.dev.activated, 1);
    assert_int_equal(fx.dev.features_at_activate, V1 | (1ULL << 3));
}

/* What the driver accepted decides how the queues are walked. */
static void test_ring_features_reach_the_queues(void **state)
{
    assert_int_equal(negotiate(V1), S_FEATURES);
    assert_int_equal(setup_queue(0, 16, FAKE_DESC, FAKE_AVAIL, FAKE_USED), 1);
    assert_false(fx.t.dev->queues[0].indirect);
    assert_false(fx.t.dev->queues[0].event_idx);
    /* An indirect descriptor is then a bad chain. */
    struct vring_desc d = {.addr = FAKE_INDIRECT, .len = 16, .flags = VRING_DESC_F_INDIRECT};
    assert_int_equal(guest_mem_write(&fx.mem, FAKE_DESC, &d, sizeof(d)), 0);
    struct vring_desc table = {.addr = FAKE_BUF, .len = 8};
    assert_int_equal(guest_mem_write(&fx.mem, FAKE_INDIRECT, &table, sizeof(table)), 0);
    uint16_t avail[3] = {0, 1, 0}; /* flags, idx, ring[0] */
    assert_int_equal(guest_mem_write(&fx.mem, FAKE_AVAIL, avail, sizeof(avail)), 0);
    struct virtq_chain chain;
    const char *why;
    assert_int_equal(virtqueue_pop(&fx.t.dev->queues[0], &chain, &why), VIRTQ_POP_BAD_CHAIN);

    wr(VIRTIO_MMIO_STATUS, 0);
    assert_int_equal(
        negotiate(V1 | (1ULL << VIRTIO_RING_F_INDIRECT_DESC) | (1ULL << VIRTIO_RING_F_EVENT_IDX)),
        S_FEATURES);
    assert_int_equal(setup_queue(0, 16, FAKE_DESC, FAKE_AVAIL, FAKE_USED), 1);
    assert_true(fx.t.dev->queues[0].indirect);
    assert_true(fx.t.dev->queues[0].event_idx);
    assert_int_equal(virtqueue_pop(&fx.t.dev->queues[0], &chain, &why), VIRTQ_POP_CHAIN);
    assert_int_equal(chain.nreadable, 1);
}

/* QueueNum must be a power of 2 no larger than QueueNumMax (§2.7, §4.2.2.2); a value that
 * only looks valid in its low 16 bits is no exception. */
static void test_queue_sizes(void **state)
{
    static const struct {
        uint32_t size;
        uint32_t ready;
    } cases[] = {
        {QUEUE_MAX, 1},     {1, 1},  {32, 1},      {0, 0},
        {QUEUE_MAX * 2, 0}, {48, 0}, {0x10010, 0}, {0xffffffff, 0},
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        wr(VIRTIO_MMIO_STATUS, 0);
        negotiate(V1);
        assert_int_equal(setup_queue(0, cases[i].size, FAKE_DESC, FAKE_AVAIL, FAKE_USED),
                         cases[i].ready);
        if (cases[i].ready)
            assert_int_equal(fx.t.dev->queues[0].size, cases[i].size);
        else
            assert_true(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
    }
}

/* Ring addresses are 64-bit through Low/High pairs; any ring outside RAM is refused. */
static void test_rings_outside_ram(void **state)
{
    static const struct {
        uint64_t desc, avail, used;
    } cases[] = {
        {FAKE_DESC | (1ULL << 32), FAKE_AVAIL, FAKE_USED},
        {FAKE_DESC, FAKE_AVAIL | (1ULL << 40), FAKE_USED},
        {FAKE_DESC, FAKE_AVAIL, FAKE_USED | (1ULL << 63)},
        {FAKE_RAM - 16 * 8, FAKE_AVAIL, FAKE_USED}, /* 16 descriptors need 256 bytes */
        {FAKE_DESC, FAKE_AVAIL, FAKE_RAM},
        {FAKE_DESC, 0xd0000000, FAKE_USED}, /* our own register window */
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        wr(VIRTIO_MMIO_STATUS, 0);
        negotiate(V1);
        assert_int_equal(setup_queue(0, 16, cases[i].desc, cases[i].avail, cases[i].used), 0);
        assert_true(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
        assert_int_equal(fx.dev.irqs, 0); /* not DRIVER_OK yet: no config interrupt */
    }
}

/* High halves land in the top 32 bits and survive a later Low write: rings at 4 GiB+. */
static void test_rings_above_4_gib(void **state)
{
    const uint64_t base = GUEST_MMIO_HOLE_END;
    negotiate(V1);
    wr(VIRTIO_MMIO_QUEUE_SEL, 1);
    wr(VIRTIO_MMIO_QUEUE_NUM, 8);
    wr(VIRTIO_MMIO_QUEUE_DESC_HIGH, 1);
    wr(VIRTIO_MMIO_QUEUE_DESC_LOW, 0x1000);
    wr(VIRTIO_MMIO_QUEUE_AVAIL_HIGH, 1);
    wr(VIRTIO_MMIO_QUEUE_AVAIL_LOW, 0x2000);
    wr(VIRTIO_MMIO_QUEUE_USED_LOW, 0x3000);
    wr(VIRTIO_MMIO_QUEUE_USED_HIGH, 1);
    wr(VIRTIO_MMIO_QUEUE_READY, 1);
    assert_int_equal(rd(VIRTIO_MMIO_QUEUE_READY), 1);
    assert_int_equal(fx.t.dev->queues[1].desc_gpa, base + 0x1000);
    assert_int_equal(fx.t.dev->queues[1].avail_gpa, base + 0x2000);
    assert_int_equal(fx.t.dev->queues[1].used_gpa, base + 0x3000);
    driver_ok();

    /* A chain made available there is served from there. */
    struct vring_desc d = {.addr = base + 0x10000, .len = 64, .flags = VRING_DESC_F_WRITE};
    assert_int_equal(guest_mem_write(&fx.mem, base + 0x1000, &d, sizeof(d)), 0);
    uint16_t avail[3] = {0, 1, 0};
    assert_int_equal(guest_mem_write(&fx.mem, base + 0x2000, avail, sizeof(avail)), 0);
    struct virtq_chain chain;
    const char *why;
    assert_int_equal(virtqueue_pop(&fx.t.dev->queues[1], &chain, &why), VIRTQ_POP_CHAIN);
    assert_ptr_equal(chain.iov[0].iov_base, guest_mem_ptr(&fx.mem, base + 0x10000, 64));
    virtqueue_push(&fx.t.dev->queues[1], chain.head, 64);
    virtio_dev_notify_used(fx.t.dev, 1);
    uint16_t used_idx;
    assert_int_equal(guest_mem_read(&fx.mem, base + 0x3002, &used_idx, 2), 0);
    assert_int_equal(used_idx, 1);
    assert_int_equal(rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);

    /* A ring that starts in low RAM and runs into the hole is refused. */
    wr(VIRTIO_MMIO_STATUS, 0);
    negotiate(V1);
    assert_int_equal(setup_queue(0, 16, GUEST_MMIO_HOLE_START - 128, FAKE_AVAIL, FAKE_USED), 0);
}

/* Registers of a queue that does not exist: QueueNumMax 0 (§4.2.2 table), writes ignored. */
static void test_queue_that_does_not_exist(void **state)
{
    negotiate(V1);
    static const uint32_t sels[] = {2, VIRTIO_MAX_QUEUES, 0xffffffff};
    for (unsigned i = 0; i < sizeof(sels) / sizeof(sels[0]); i++) {
        wr(VIRTIO_MMIO_QUEUE_SEL, sels[i]);
        assert_int_equal(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
        wr(VIRTIO_MMIO_QUEUE_NUM, 16);
        queue_addresses(FAKE_DESC, FAKE_AVAIL, FAKE_USED);
        wr(VIRTIO_MMIO_QUEUE_READY, 1);
        assert_int_equal(rd(VIRTIO_MMIO_QUEUE_READY), 0);
        wr(VIRTIO_MMIO_QUEUE_NOTIFY, sels[i]);
    }
    assert_int_equal(fx.dev.kicks, 0);
    assert_int_equal(rd(VIRTIO_MMIO_STATUS), S_FEATURES); /* no NEEDS_RESET either */
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
        assert_false(fx.t.dev->queues[q].ready);
}

/* Writing 0 to QueueReady stops the queue and reads back 0 (§4.2.2.2: "To stop using the queue
 * the driver MUST write zero ... and MUST read the value back"); the doorbell is then ignored. */
static void test_queue_ready_zero_stops_the_queue(void **state)
{
    negotiate(V1);
    assert_int_equal(setup_queue(0, 16, FAKE_DESC, FAKE_AVAIL, FAKE_USED), 1);
    driver_ok();
    virtio_dev_handle_notify(fx.t.dev, 0);
    assert_int_equal(fx.dev.notified, 1);
    wr(VIRTIO_MMIO_QUEUE_READY, 0);
    assert_int_equal(rd(VIRTIO_MMIO_QUEUE_READY), 0);
    virtio_dev_handle_notify(fx.t.dev, 0);
    assert_int_equal(fx.dev.notified, 1);
    /* Set-up registers may be written again now. */
    wr(VIRTIO_MMIO_QUEUE_NUM, 8);
    assert_int_equal(fx.t.dev->queues[0].size, 8);
}

/* After a reset the driver starts from scratch with new rings (whose avail idx is 0 again):
 * the device must follow, not expect the old ring's indices. */
static void test_reinitialisation_after_reset(void **state)
{
    negotiate(V1);
    assert_int_equal(setup_queue(0, 16, FAKE_DESC, FAKE_AVAIL, FAKE_USED), 1);
    driver_ok();
    struct vring_desc d = {.addr = FAKE_BUF, .len = 8, .flags = VRING_DESC_F_WRITE};
    assert_int_equal(guest_mem_write(&fx.mem, FAKE_DESC, &d, sizeof(d)), 0);
    uint16_t avail[6] = {0, 3, 0, 0, 0, 0};
    assert_int_equal(guest_mem_write(&fx.mem, FAKE_AVAIL, avail, sizeof(avail)), 0);
    struct virtq_chain chain;
    const char *why;
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(virtqueue_pop(&fx.t.dev->queues[0], &chain, &why), VIRTQ_POP_CHAIN);
        virtqueue_push(&fx.t.dev->queues[0], chain.head, 8);
    }
    virtio_dev_notify_used(fx.t.dev, 0);

    wr(VIRTIO_MMIO_STATUS, 0);
    assert_int_equal(fx.dev.resets, 1);
    assert_int_equal(rd(VIRTIO_MMIO_STATUS), 0);
    assert_int_equal(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    for (unsigned q = 0; q < 2; q++) {
        wr(VIRTIO_MMIO_QUEUE_SEL, q);
        assert_int_equal(rd(VIRTIO_MMIO_QUEUE_READY), 0);
        assert_int_equal(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), QUEUE_MAX);
    }
    virtio_dev_handle_notify(fx.t.dev, 0);
    assert_int_equal(fx.dev.notified, 0);

    /* Fresh rings elsewhere, one chain in them. */
    const uint64_t desc2 = FAKE_DESC + 0x1000, avail2 = FAKE_AVAIL + 0x1000;
    const uint64_t used2 = FAKE_USED + 0x1000;
    assert_int_equal(guest_mem_write(&fx.mem, desc2 + 16 * 5, &d, sizeof(d)), 0);
    uint16_t avail_new[3] = {0, 1, 5};
    assert_int_equal(guest_mem_write(&fx.mem, avail2, avail_new, sizeof(avail_new)), 0);
    assert_int_equal(negotiate(V1), S_FEATURES);
    assert_int_equal(setup_queue(0, 8, desc2, avail2, used2), 1);
    driver_ok();
    assert_int_equal(fx.dev.activated, 2);
    assert_int_equal(virtqueue_pop(&fx.t.dev->queues[0], &chain, &why), VIRTQ_POP_CHAIN);
    assert_int_equal(chain.head, 5);
    virtqueue_push(&fx.t.dev->queues[0], chain.head, 8);
    struct vring_used_elem elem;
    uint16_t used_idx;
    assert_int_equal(guest_mem_read(&fx.mem, used2 + 2, &used_idx, 2), 0);
    assert_int_equal(guest_mem_read(&fx.mem, used2 + 4, &elem, sizeof(elem)), 0);
    assert_int_equal(used_idx, 1);
    assert_int_equal(elem.id, 5);
    assert_int_equal(elem.len, 8);
}

/* FAILED (§2.1): the driver gave up; no more doorbells reach the device until a reset. */
static void test_failed_device_until_reset(void **state)
{
    negotiate(V1);
    assert_int_equal(setup_queue(0, 16, FAKE_DESC, FAKE_AVAIL, FAKE_USED), 1);
    driver_ok();
    wr(VIRTIO_MMIO_STATUS, S_FEATURES | VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_FAILED);
    assert_true(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FAILED);
    virtio_dev_handle_notify(fx.t.dev, 0);
    assert_int_equal(fx.dev.notified, 0);
    wr(VIRTIO_MMIO_STATUS, 0);
    assert_int_equal(rd(VIRTIO_MMIO_STATUS), 0);
    negotiate(V1);
    assert_int_equal(setup_queue(0, 16, FAKE_DESC, FAKE_AVAIL, FAKE_USED), 1);
    driver_ok();
    virtio_dev_handle_notify(fx.t.dev, 0);
    assert_int_equal(fx.dev.notified, 1);
    assert_int_equal(fx.dev.last_notify_queue, 0);
}

/* DEVICE_NEEDS_RESET (§2.1.2): with DRIVER_OK a config interrupt follows; the bit stays set
 * when the driver writes Status back with it, and the device takes no more work. */
static void test_needs_reset(void **state)
{
    negotiate(V1);
    assert_int_equal(setup_queue(0, 16, FAKE_DESC, FAKE_AVAIL, FAKE_USED), 1);
    driver_ok();
    unsigned generation = rd(VIRTIO_MMIO_CONFIG_GENERATION);
    virtio_dev_needs_reset(fx.t.dev, "test");
    assert_int_equal(fx.dev.irqs, 1);
    assert_int_equal(rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
    uint32_t status = rd(VIRTIO_MMIO_STATUS);
    assert_int_equal(status, S_FEATURES | VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_NEEDS_RESET);
    assert_int_equal(rd(VIRTIO_MMIO_CONFIG_GENERATION), generation);
    wr(VIRTIO_MMIO_STATUS, status); /* a read-modify-write by the driver */
    assert_int_equal(rd(VIRTIO_MMIO_STATUS), status);
    virtio_dev_handle_notify(fx.t.dev, 0);
    assert_int_equal(fx.dev.notified, 0);
    virtio_dev_needs_reset(fx.t.dev, "again"); /* one interrupt is enough */
    assert_int_equal(fx.dev.irqs, 1);
    assert_int_equal(fx.t.dev->device_errors, 2);
}

/* InterruptStatus shows exactly the events that happened and are not yet acknowledged
 * (§4.2.2.1); acknowledging one cause leaves the other. */
static void test_interrupt_causes_are_separate(void **state)
{
    negotiate(V1);
    assert_int_equal(setup_queue(0, 16, FAKE_DESC, FAKE_AVAIL, FAKE_USED), 1);
    assert_int_equal(
        setup_queue(1, 16, FAKE_DESC + 0x1000, FAKE_AVAIL + 0x1000, FAKE_USED + 0x1000), 1);
    driver_ok();
    assert_int_equal(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    virtio_dev_config_changed(fx.t.dev);
    assert_int_equal(rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
    wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING); /* not pending: no effect */
    assert_int_equal(rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
    virtio_dev_notify_used(fx.t.dev, 1);
    assert_int_equal(rd(VIRTIO_MMIO_INTERRUPT_STATUS),
                     VIRTIO_MMIO_INT_CONFIG | VIRTIO_MMIO_INT_VRING);
    assert_int_equal(fx.dev.irqs, 2);
    wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);
    assert_int_equal(rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
    wr(VIRTIO_MMIO_INTERRUPT_ACK, 0xffffffff);
    assert_int_equal(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    virtio_dev_notify_used(fx.t.dev, 5); /* no such queue: nothing */
    assert_int_equal(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    assert_int_equal(fx.dev.irqs, 2);
}

/* ConfigGeneration moves with every config change and only then (§4.2.2.1). */
static void test_config_generation(void **state)
{
    uint32_t g0 = rd(VIRTIO_MMIO_CONFIG_GENERATION);
    assert_int_equal(rd(VIRTIO_MMIO_CONFIG_GENERATION), g0);
    uint8_t b[4];
    virtio_mmio_bus_ops.read(&fx.t, VIRTIO_MMIO_CONFIG, b, 4);
    assert_int_equal(rd(VIRTIO_MMIO_CONFIG_GENERATION), g0);
    virtio_dev_config_changed(fx.t.dev); /* before DRIVER_OK: no interrupt, new generation */
    assert_int_not_equal(rd(VIRTIO_MMIO_CONFIG_GENERATION), g0);
    assert_int_equal(fx.dev.irqs, 0);
    uint32_t g1 = rd(VIRTIO_MMIO_CONFIG_GENERATION);
    virtio_dev_config_changed(fx.t.dev);
    assert_int_not_equal(rd(VIRTIO_MMIO_CONFIG_GENERATION), g1);
}

/* Config space: byte-granular inside config_size, nothing forwarded outside it. */
static void test_config_space_bounds(void **state)
{
    uint8_t b[8];
    virtio_mmio_bus_ops.read(&fx.t, VIRTIO_MMIO_CONFIG + CONFIG_SIZE - 1, b, 1);
    assert_int_equal(b[0], 0x10 + CONFIG_SIZE - 1);
    virtio_mmio_bus_ops.read(&fx.t, VIRTIO_MMIO_CONFIG + 1, b, 4); /* unaligned is fine */
    assert_int_equal(b[0], 0x11);
    assert_int_equal(b[3], 0x14);
    assert_int_equal(fx.dev.last_offset, 1);
    assert_int_equal(fx.dev.last_size, 4);
    unsigned reads = fx.dev.config_reads;

    static const struct {
        uint64_t offset;
        unsigned size;
    } outside[] = {
        {VIRTIO_MMIO_CONFIG + CONFIG_SIZE - 1, 2},
        {VIRTIO_MMIO_CONFIG + CONFIG_SIZE - 4, 8},
        {VIRTIO_MMIO_CONFIG + CONFIG_SIZE, 1},
        {0xffc, 4},
        {0xfff, 1},
    };
    for (unsigned i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
        memset(b, 0xee, sizeof(b));
        virtio_mmio_bus_ops.read(&fx.t, outside[i].offset, b, outside[i].size);
        for (unsigned k = 0; k < outside[i].size; k++)
            assert_int_equal(b[k], 0);
        virtio_mmio_bus_ops.write(&fx.t, outside[i].offset, b, outside[i].size);
    }
    assert_int_equal(fx.dev.config_reads, reads);
    assert_int_equal(fx.dev.config_writes, 0);
    assert_int_equal(fx.dev.config[CONFIG_SIZE - 1], 0x10 + CONFIG_SIZE - 1);
}

static void test_config_space_without_callbacks(void **state)
{
    teardown(state);
    assert_int_equal(guest_mem_init(&fx.mem, FAKE_RAM, NULL), 0);
    fx.log.out = fopen("/dev/null", "w");
    static const struct virtio_dev_ops bare = {.queue_notify = rec_notify};
    struct virtio_device_info info = rec_info();
    info.ops = &bare;
    info.config_size = 0;
    struct virtio_mmio_host host = {.raise_irq = rec_irq, .kick = rec_kick, .opaque = &fx.dev};
    assert_int_equal(virtio_dev_init(&fx.vdev, &info, &fx.mem, &fx.log, NULL), 0);
    virtio_mmio_init(&fx.t, &fx.vdev, &host, 0);
    uint8_t b[4] = {1, 2, 3, 4};
    virtio_mmio_bus_ops.write(&fx.t, VIRTIO_MMIO_CONFIG, b, 4);
    virtio_mmio_bus_ops.read(&fx.t, VIRTIO_MMIO_CONFIG, b, 4);
    assert_int_equal(b[0] | b[1] | b[2] | b[3], 0);
    /* No activate or reset callback either: the status machine still runs. */
    assert_int_equal(negotiate(V1), S_FEATURES);
    driver_ok();
    assert_true(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_DRIVER_OK);
    wr(VIRTIO_MMIO_STATUS, 0);
    assert_int_equal(rd(VIRTIO_MMIO_STATUS), 0);
}

static void test_init_refuses_bad_descriptions(void **state)
{
    struct virtio_dev d;
    struct virtio_device_info info = rec_info();
    struct error err = {{0}};
    info.num_queues = 0;
    assert_int_equal(virtio_dev_init(&d, &info, &fx.mem, &fx.log, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "recorder"));
    info = rec_info();
    info.num_queues = VIRTIO_MAX_QUEUES + 1;
    assert_int_equal(virtio_dev_init(&d, &info, &fx.mem, &fx.log, &err), -EINVAL);
    info = rec_info();
    info.queue_max_size = 100;
    assert_int_equal(virtio_dev_init(&d, &info, &fx.mem, &fx.log, &err), -EINVAL);
    info.queue_max_size = VIRTQ_MAX_SIZE * 2;
    assert_int_equal(virtio_dev_init(&d, &info, &fx.mem, &fx.log, &err), -EINVAL);
    info = rec_info();
    info.config_size = 0x1000 - VIRTIO_MMIO_CONFIG_BASE + 1; /* past the 4 KiB window */
    assert_int_equal(virtio_dev_init(&d, &info, &fx.mem, &fx.log, &err), -EINVAL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_read_only_registers_ignore_writes),
        T(test_register_accesses_not_32_bits_wide),
        T(test_no_shared_memory_regions),
        T(test_device_features_pages),
        T(test_features_beyond_64_bits),
        T(test_features_rewritten_before_features_ok),
        T(test_ring_features_reach_the_queues),
        T(test_queue_sizes),
        T(test_rings_outside_ram),
        cmocka_unit_test_setup_teardown(test_rings_above_4_gib, setup_big, teardown),
        T(test_queue_that_does_not_exist),
        T(test_queue_ready_zero_stops_the_queue),
        T(test_reinitialisation_after_reset),
        T(test_failed_device_until_reset),
        T(test_needs_reset),
        T(test_interrupt_causes_are_separate),
        T(test_config_generation),
        T(test_config_space_bounds),
        T(test_config_space_without_callbacks),
        T(test_init_refuses_bad_descriptions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
