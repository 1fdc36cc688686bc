/* Unit tests for virtio-blk end to end without KVM: a real transport, guest RAM, a libuv loop
 * and a temporary image; requests are written into the queue as a driver would, and the data
 * on disk, status bytes and used lengths are checked — including every malformed request. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/devices/virtio_blk.h"
#include "kiln/devices/virtio_blk_request.h"
#include "virtio_fake.h"

#define DISK_SECTORS 64
#define W            VRING_DESC_F_WRITE
#define N            VRING_DESC_F_NEXT
#define HDR          (FAKE_BUF)
#define DATA         (FAKE_BUF + 0x1000)
#define STATUS       (FAKE_BUF + 0x10000)

struct fixture {
    char path[64];
    struct disk_config disk;
    uv_loop_t loop;
    struct guest_mem mem;
    struct log log;
    struct virtio_blk *blk;
    struct virtio_mmio t;
    uint16_t avail_idx;
    unsigned kicks; /* the device asking the loop to come back to its queue */
};

static struct fixture fx;

static void no_irq(void *opaque)
{
}
static void count_kick(void *opaque, unsigned q)
{
    fx.kicks++;
}

static void *gpa(uint64_t addr)
{
    return guest_mem_ptr(&fx.mem, addr, 1);
}

static void wr(uint64_t offset, uint32_t v)
{
    virtio_mmio_bus_ops.write(&fx.t, offset, (const uint8_t *)&v, 4);
}

static uint32_t rd(uint64_t offset)
{
    uint32_t v;
    virtio_mmio_bus_ops.read(&fx.t, offset, (uint8_t *)&v, 4);
    return v;
}

/* Driver side: negotiate VERSION_1 + FLUSH + DISCARD + WRITE_ZEROES, set up queue 0. */
static void bring_up(void)
{
    wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    uint32_t offered = rd(VIRTIO_MMIO_DEVICE_FEATURES);
    uint32_t want = (1u << VIRTIO_BLK_F_FLUSH) | (1u << VIRTIO_BLK_F_DISCARD) |
                    (1u << VIRTIO_BLK_F_WRITE_ZEROES) | (1u << VIRTIO_BLK_F_RO) |
                    (1u << VIRTIO_BLK_F_CONFIG_WCE);
    wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    wr(VIRTIO_MMIO_DRIVER_FEATURES, offered & want);
    wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    wr(VIRTIO_MMIO_DRIVER_FEATURES, 1u << (VIRTIO_F_VERSION_1 - 32));
    uint32_t s = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK;
    wr(VIRTIO_MMIO_STATUS, s);
    assert_int_equal(rd(VIRTIO_MMIO_STATUS), s);
    wr(VIRTIO_MMIO_QUEUE_SEL, 0);
    wr(VIRTIO_MMIO_QUEUE_NUM, fx.disk.queue_size);
    wr(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)FAKE_DESC);
    wr(VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)FAKE_AVAIL);
    wr(VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)FAKE_USED);
    wr(VIRTIO_MMIO_QUEUE_READY, 1);
    wr(VIRTIO_MMIO_STATUS, s | VIRTIO_CONFIG_S_DRIVER_OK);
}

static int open_device_sized(bool readonly, const char *serial, uint64_t sectors,
                             unsigned queue_size)
{
    memset(&fx, 0, sizeof(fx));
    snprintf(fx.path, sizeof(fx.path), "/tmp/kiln-blk-test-%d.img", (int)getpid());
    int fd = open(fx.path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)(sectors * 512)) < 0)
        return -1;
    close(fd);
    fx.disk.path = fx.path;
    fx.disk.readonly = readonly;
    fx.disk.serial = (char *)serial;
    fx.disk.cache = DISK_CACHE_WRITEBACK;
    fx.disk.queue_size = queue_size;
    fx.log.level = LOG_ERROR;
    fx.log.out = fopen("/dev/null", "w");
    uv_loop_init(&fx.loop);
    if (guest_mem_init(&fx.mem, FAKE_RAM, NULL) < 0 ||
        virtio_blk_create(&fx.blk, &fx.disk, &fx.loop, &fx.mem, &fx.log, NULL) < 0)
        return -1;
    struct virtio_mmio_host host = {.raise_irq = no_irq, .kick = count_kick};
    virtio_mmio_init(&fx.t, virtio_blk_dev(fx.blk), &host, 0xd0000000);
    bring_up();
    return 0;
}

static int open_device(bool readonly, const char *serial)
{
    return open_device_sized(readonly, serial, DISK_SECTORS, 16);
}

static int setup(void **state)
{
    return open_device(false, "kiln-serial-0123");
}
static int setup_readonly(void **state)
{
    return open_device(true, NULL);
}
/* 4 GiB, sparse: room for a segment just past the 2 GiB limit that is still inside the disk. */
static int setup_big_disk(void **state)
{
    return open_device_sized(false, NULL, 8ULL << 20, 16);
}
static int setup_big_queue(void **state)
{
    return open_device_sized(false, NULL, DISK_SECTORS, 128);
}

static int teardown(void **state)
{
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    virtio_blk_destroy(fx.blk);
    uv_loop_close(&fx.loop);
    guest_mem_destroy(&fx.mem);
    fclose(fx.log.out);
    unlink(fx.path);
    return 0;
}

static void header(uint32_t type, uint64_t sector)
{
    struct virtio_blk_outhdr h = {.type = type, .sector = sector};
    memcpy(gpa(HDR), &h, sizeof(h));
}

/* Makes chain `head` available, kicks, and runs the loop until the device answered. Returns
 * the used length; *status is the status byte (0xee if the device never wrote it). */
static uint32_t run_chain(uint16_t head, uint8_t *status)
{
    *(uint8_t *)gpa(STATUS) = 0xee;
    struct vring_avail *avail = gpa(FAKE_AVAIL);
    avail->ring[fx.avail_idx % 16] = head;
    fx.avail_idx++;
    avail->idx = fx.avail_idx;
    virtio_dev_handle_notify(fx.t.dev, 0);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    struct vring_used *used = gpa(FAKE_USED);
    assert_int_equal(used->idx, fx.avail_idx);
    assert_int_equal(used->ring[(fx.avail_idx - 1) % 16].id, head);
    assert_int_equal(used->flags, 0); /* the ring drained: doorbells are wanted again */
    *status = *(uint8_t *)gpa(STATUS);
    return used->ring[(fx.avail_idx - 1) % 16].len;
}

static void desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    struct vring_desc d = {.addr = addr, .len = len, .flags = flags, .next = next};
    memcpy((uint8_t *)gpa(FAKE_DESC) + i * sizeof(d), &d, sizeof(d));
}

/* header -> data (len bytes, writable for reads) -> status */
static uint32_t request(uint32_t type, uint64_t sector, uint32_t len, uint8_t *status)
{
    header(type, sector);
    bool in = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
    if (len) {
        desc(0, HDR, 16, N, 1);
        desc(1, DATA, len, N | (in ? W : 0), 2);
    } else {
        desc(0, HDR, 16, N, 2);
    }
    desc(2, STATUS, 1, W, 0);
    return run_chain(0, status);
}

static void read_file(uint64_t offset, void *buf, size_t len)
{
    int fd = open(fx.path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, len, (off_t)offset), (ssize_t)len);
    close(fd);
}

static void test_config_space(void **state)
{
    struct virtio_blk_config c;
    for (unsigned i = 0; i < sizeof(c); i++)
        virtio_mmio_bus_ops.read(&fx.t, VIRTIO_MMIO_CONFIG + i, (uint8_t *)&c + i, 1);
    assert_int_equal(c.capacity, DISK_SECTORS);
    assert_int_equal(c.blk_size, 512);
    assert_int_equal(c.seg_max, 14);
    assert_int_equal(c.wce, 1);
    assert_int_equal(c.max_discard_seg, BLK_MAX_DISCARD_SEGMENTS);
}

static void test_write_then_read(void **state)
{
    uint8_t status;
    memset(gpa(DATA), 0x5a, 1024);
    assert_int_equal(request(VIRTIO_BLK_T_OUT, DISK_SECTORS - 2, 1024, &status), 1);
    assert_int_equal(status, VIRTIO_BLK_S_OK);
    uint8_t on_disk[1024];
    read_file((DISK_SECTORS - 2) * 512, on_disk, sizeof(on_disk));
    for (unsigned i = 0; i < sizeof(on_disk); i++)
        assert_int_equal(on_disk[i], 0x5a);

    memset(gpa(DATA), 0, 1024);
    assert_int_equal(request(VIRTIO_BLK_T_IN, DISK_SECTORS - 2, 1024, &status), 1025);
    assert_int_equal(status, VIRTIO_BLK_S_OK);
    assert_int_equal(((uint8_t *)gpa(DATA))[1023], 0x5a);
}

static void test_multi_segment_read(void **state)
{
    uint8_t status, pattern[1536];
    for (unsigned i = 0; i < sizeof(pattern); i++)
        pattern[i] = (uint8_t)(i * 7);
    memcpy(gpa(DATA), pattern, sizeof(pattern));
    assert_int_equal(request(VIRTIO_BLK_T_OUT, 4, sizeof(pattern), &status), 1);
    /* Read it back into three buffers of 512 bytes in different places. */
    header(VIRTIO_BLK_T_IN, 4);
    desc(0, HDR, 16, N, 1);
    desc(1, DATA + 0x4000, 512, N | W, 3);
    desc(3, DATA + 0x8000, 512, N | W, 4);
    desc(4, DATA + 0xc000, 512, N | W, 2);
    desc(2, STATUS, 1, W, 0);
    assert_int_equal(run_chain(0, &status), 1537);
    assert_int_equal(status, VIRTIO_BLK_S_OK);
    assert_memory_equal(gpa(DATA + 0x4000), pattern, 512);
    assert_memory_equal(gpa(DATA + 0x8000), pattern + 512, 512);
    assert_memory_equal(gpa(DATA + 0xc000), pattern + 1024, 512);
}

static void test_out_of_range_sectors(void **state)
{
    uint8_t status;
    assert_int_equal(request(VIRTIO_BLK_T_IN, DISK_SECTORS - 1, 1024, &status), 1);
    assert_int_equal(status, VIRTIO_BLK_S_IOERR);
    assert_int_equal(request(VIRTIO_BLK_T_OUT, UINT64_MAX, 512, &status), 1);
    assert_int_equal(status, VIRTIO_BLK_S_IOERR);
    assert_int_equal(request(VIRTIO_BLK_T_IN, DISK_SECTORS, 512, &status), 1);
    assert_int_equal(status, VIRTIO_BLK_S_IOERR);
    assert_int_equal(fx.t.dev->device_errors, 0); /* a guest mistake, not a hostile request */
}

static void test_flush_get_id_and_unsupported(void **state)
{
    uint8_t status;
    assert_int_equal(request(VIRTIO_BLK_T_FLUSH, 0, 0, &status), 1);
    assert_int_equal(status, VIRTIO_BLK_S_OK);
    memset(gpa(DATA), 0xff, 32);
    assert_int_equal(request(VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES, &status), 21);
    assert_int_equal(status, VIRTIO_BLK_S_OK);
    assert_memory_equal(gpa(DATA), "kiln-serial-0123\0\0\0\0", 20);
    assert_int_equal(request(99, 0, 0, &status), 1);
    assert_int_equal(status, VIRTIO_BLK_S_UNSUPP);
}

static void segment_request(uint32_t type, uint64_t sector, uint32_t count, uint32_t flags,
                            uint8_t *status)
{
    struct virtio_blk_discard_write_zeroes seg = {
        .sector = sector, .num_sectors = count, .flags = flags};
    memcpy(gpa(DATA), &seg, sizeof(seg));
    header(type, 0);
    desc(0, HDR, 16, N, 1);
    desc(1, DATA, sizeof(seg), N, 2);
    desc(2, STATUS, 1, W, 0);
    run_chain(0, status);
}

static void test_discard_and_write_zeroes(void **state)
{
    uint8_t status;
    memset(gpa(DATA), 0x77, 8 * 512);
    assert_int_equal(request(VIRTIO_BLK_T_OUT, 8, 8 * 512, &status), 1);
    segment_request(VIRTIO_BLK_T_WRITE_ZEROES, 8, 2, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP, &status);
    assert_int_equal(status, VIRTIO_BLK_S_OK);
    segment_request(VIRTIO_BLK_T_WRITE_ZEROES, 10, 2, 0, &status);
    assert_int_equal(status, VIRTIO_BLK_S_OK);
    uint8_t on_disk[8 * 512];
    read_file(8 * 512, on_disk, sizeof(on_disk));
    for (unsigned i = 0; i < 4 * 512; i++)
        assert_int_equal(on_disk[i], 0);
    assert_int_equal(on_disk[4 * 512], 0x77);
    segment_request(VIRTIO_BLK_T_DISCARD, 12, 4, 0, &status);
    assert_int_equal(status, VIRTIO_BLK_S_OK);
    /* DISCARD with the unmap flag is not allowed; ranges past the end are IOERR. */
    segment_request(VIRTIO_BLK_T_DISCARD, 12, 4, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP, &status);
    assert_int_equal(status, VIRTIO_BLK_S_UNSUPP);
    segment_request(VIRTIO_BLK_T_WRITE_ZEROES, DISK_SECTORS - 1, 2, 0, &status);
    assert_int_equal(status, VIRTIO_BLK_S_IOERR);
}

static void test_malformed_requests(void **state)
{
    uint8_t status;
    /* Read with a device-readable data buffer (the device would write to a read-only one). */
    header(VIRTIO_BLK_T_IN, 0);
    desc(0, HDR, 16, N, 1);
    desc(1, DATA, 512, N, 2);
    desc(2, STATUS, 1, W, 0);
    assert_int_equal(run_chain(0, &status), 1);
    assert_int_equal(status, VIRTIO_BLK_S_IOERR);
    /* Write whose data is in a device-writable buffer. */
    header(VIRTIO_BLK_T_OUT, 0);
    desc(1, DATA, 512, N | W, 2);
    assert_int_equal(run_chain(0, &status), 1);
    assert_int_equal(status, VIRTIO_BLK_S_IOERR);
    /* Header shorter than 16 bytes. */
    desc(0, HDR, 8, N, 2);
    assert_int_equal(run_chain(0, &status), 1);
    assert_int_equal(status, VIRTIO_BLK_S_IOERR);
    /* Data length not a multiple of 512. */
    assert_int_equal(request(VIRTIO_BLK_T_IN, 0, 100, &status), 1);
    assert_int_equal(status, VIRTIO_BLK_S_IOERR);
    /* No writable status byte at all: the chain comes back with length 0, untouched. */
    header(VIRTIO_BLK_T_FLUSH, 0);
    desc(0, HDR, 16, 0, 0);
    assert_int_equal(run_chain(0, &status), 0);
    assert_int_equal(status, 0xee);
    /* A descriptor loop: given back with length 0. */
    desc(0, HDR, 16, N, 1);
    desc(1, DATA, 512, N, 0);
    assert_int_equal(run_chain(0, &status), 0);
    assert_int_equal(fx.t.dev->device_errors, 6);
    /* The device keeps working. */
    assert_int_equal(request(VIRTIO_BLK_T_FLUSH, 0, 0, &status), 1);
    assert_int_equal(status, VIRTIO_BLK_S_OK);
}

static struct virtqueue_counters queue_counters(void)
{
    struct virtqueue_counters q;
    virtio_dev_queue_counters(fx.t.dev, 0, &q);
    return q;
}

/* What a user reads while the VM runs: ops and bytes by type, answers that failed, and the
 * queue's chains, used entries, interrupts and bad chains. */
static void test_counters_count_requests_and_bytes(void **state)
{
    struct virtio_blk_counters c;
    virtio_blk_counters(fx.blk, &c);
    struct virtio_blk_counters zero = {0};
    assert_memory_equal(&c, &zero, sizeof(c));
    struct virtqueue_counters q = queue_counters();
    assert_int_equal(q.notifications + q.chains + q.used + q.interrupts + q.bad_chains, 0);

    uint8_t status;
    assert_int_equal(request(VIRTIO_BLK_T_IN, 0, 4096, &status), 4097);
    assert_int_equal(request(VIRTIO_BLK_T_IN, 8, 4096, &status), 4097);
    assert_int_equal(request(VIRTIO_BLK_T_OUT, 16, 512, &status), 1);
    virtio_blk_counters(fx.blk, &c);
    assert_int_equal(c.read_ops, 2);
    assert_int_equal(c.read_bytes, 8192);
    assert_int_equal(c.write_ops, 1);
    assert_int_equal(c.write_bytes, 512);
    assert_int_equal(c.errors, 0);
    q = queue_counters();
    assert_int_equal(q.notifications, 3);
    assert_int_equal(q.chains, 3);
    assert_int_equal(q.used, 3);
    assert_true(q.interrupts >= 3); /* every answer interrupted: the driver did not suppress */
    assert_int_equal(q.bad_chains, 0);

    assert_int_equal(request(VIRTIO_BLK_T_FLUSH, 0, 0, &status), 1);
    segment_request(VIRTIO_BLK_T_DISCARD, 0, 1, 0, &status);
    assert_int_equal(status, VIRTIO_BLK_S_OK);
    segment_request(VIRTIO_BLK_T_WRITE_ZEROES, 1, 1, 0, &status);
    assert_int_equal(status, VIRTIO_BLK_S_OK);
    assert_int_equal(request(VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES, &status), 21);
    assert_int_equal(request(VIRTIO_BLK_T_IN, DISK_SECTORS, 512, &status), 1); /* past the end */
    assert_int_equal(status, VIRTIO_BLK_S_IOERR);
    assert_int_equal(request(99, 0, 0, &status), 1);
    assert_int_equal(status, VIRTIO_BLK_S_UNSUPP);
    virtio_blk_counters(fx.blk, &c);
    assert_int_equal(c.flush_ops, 1);
    assert_int_equal(c.discard_ops, 1);
    assert_int_equal(c.write_zeroes_ops, 1);
    assert_int_equal(c.errors, 2);
    assert_int_equal(c.read_ops, 2); /* the failed read is an error, not a read */
    assert_int_equal(c.read_bytes, 8192);
    assert_int_equal(queue_counters().chains, 9);
    assert_int_equal(queue_counters().used, 9);

    /* Bad chains: one without a status byte (well formed, refused by the device), then a
     * descriptor loop (refused by the ring). Both come back used, neither is an I/O error. */
    header(VIRTIO_BLK_T_FLUSH, 0);
    desc(0, HDR, 16, 0, 0);
    assert_int_equal(run_chain(0, &status), 0);
    desc(0, HDR, 16, N, 1);
    desc(1, DATA, 512, N, 0);
    assert_int_equal(run_chain(0, &status), 0);
    q = queue_counters();
    assert_int_equal(q.bad_chains, 2);
    assert_int_equal(q.chains, 10);
    assert_int_equal(q.used, 11);
    virtio_blk_counters(fx.blk, &c);
    assert_int_equal(c.errors, 2);

    /* Statistics, not state: a driver reset keeps them. */
    wr(VIRTIO_MMIO_STATUS, 0);
    fx.avail_idx = 0;
    bring_up();
    assert_int_equal(queue_counters().used, 11);
    virtio_blk_counters(fx.blk, &c);
    assert_int_equal(c.read_ops, 2);

    /* A driver that suppresses interrupts gets none, and none is counted. */
    ((struct vring_avail *)gpa(FAKE_AVAIL))->flags = VRING_AVAIL_F_NO_INTERRUPT;
    uint64_t interrupts = queue_counters().interrupts;
    assert_int_equal(request(VIRTIO_BLK_T_IN, 0, 512, &status), 513);
    assert_int_equal(queue_counters().interrupts, interrupts);
    assert_int_equal(queue_counters().used, 12);
}

/* A reader on another thread, as the control API's would be while the loop and the I/O pool
 * work: in the ThreadSanitizer build, a counter not read and written atomically fails here. */
struct counter_reader {
    bool done; /* atomically */
    uint64_t last_reads;
};

static void *read_counters_until_done(void *arg)
{
    struct counter_reader *r = arg;
    while (!__atomic_load_n(&r->done, __ATOMIC_SEQ_CST)) {
        struct virtio_blk_counters c;
        virtio_blk_counters(fx.blk, &c);
        struct virtqueue_counters q;
        virtio_dev_queue_counters(fx.t.dev, 0, &q);
        assert_true(c.read_ops >= r->last_reads); /* they only grow */
        r->last_reads = c.read_ops;
    }
    return NULL;
}

static void test_counters_read_from_another_thread(void **state)
{
    struct counter_reader reader = {0};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, read_counters_until_done, &reader), 0);
    uint8_t status;
    for (int i = 0; i < 200; i++)
        assert_int_equal(request(VIRTIO_BLK_T_IN, (uint64_t)(i % 8), 512, &status), 513);
    __atomic_store_n(&reader.done, true, __ATOMIC_SEQ_CST);
    pthread_join(thread, NULL);
    struct virtio_blk_counters c;
    virtio_blk_counters(fx.blk, &c);
    assert_int_equal(c.read_ops, 200);
    assert_int_equal(c.read_bytes, 200 * 512);
    assert_int_equal(queue_counters().used, 200);
}

/* A flush from the driver, now on the thread pool; its status byte still holds 0xee. */
static struct vring_avail *flush_on_the_pool(void)
{
    header(VIRTIO_BLK_T_FLUSH, 0);
    desc(0, HDR, 16, N, 2);
    desc(2, STATUS, 1, W, 0);
    *(uint8_t *)gpa(STATUS) = 0xee;
    struct vring_avail *avail = gpa(FAKE_AVAIL);
    avail->ring[0] = 0;
    avail->idx = 1;
    virtio_dev_handle_notify(fx.t.dev, 0);
    assert_int_equal(virtio_blk_in_flight(fx.blk), 1);
    return avail;
}

static void test_completion_after_reset_is_dropped(void **state)
{
    uint8_t status = 0;
    flush_on_the_pool();
    wr(VIRTIO_MMIO_STATUS, 0); /* the driver resets while the flush is on the thread pool */
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    assert_int_equal(virtio_blk_in_flight(fx.blk), 0);
    status = *(uint8_t *)gpa(STATUS);
    assert_int_equal(status, 0xee);
    assert_int_equal(((struct vring_used *)gpa(FAKE_USED))->idx, 0);
}

/* A driver that stops the queue (QueueReady=0) while a request is on the thread pool and
 * enables it again must not get that old request back in the new queue: the used ring would
 * hold a buffer the restarted queue was never given (what fuzz_blk_device now checks). */
static void test_completion_after_queue_restart_is_dropped(void **state)
{
    struct vring_avail *avail = flush_on_the_pool();
    wr(VIRTIO_MMIO_QUEUE_READY, 0);
    avail->idx = 0; /* the driver starts the queue afresh */
    wr(VIRTIO_MMIO_QUEUE_READY, 1);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    assert_int_equal(virtio_blk_in_flight(fx.blk), 0);
    assert_int_equal(*(uint8_t *)gpa(STATUS), 0xee);
    assert_int_equal(((struct vring_used *)gpa(FAKE_USED))->idx, 0);
}

static void test_readonly_disk(void **state)
{
    wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    uint32_t features = rd(VIRTIO_MMIO_DEVICE_FEATURES);
    assert_true(features & (1u << VIRTIO_BLK_F_RO));
    assert_false(features & (1u << VIRTIO_BLK_F_DISCARD));
    uint8_t status;
    memset(gpa(DATA), 0x11, 512);
    assert_int_equal(request(VIRTIO_BLK_T_OUT, 0, 512, &status), 1);
    assert_int_equal(status, VIRTIO_BLK_S_IOERR);
    uint8_t on_disk[512];
    read_file(0, on_disk, sizeof(on_disk));
    assert_int_equal(on_disk[0], 0);
    assert_int_equal(request(VIRTIO_BLK_T_IN, 0, 512, &status), 513);
    assert_int_equal(status, VIRTIO_BLK_S_OK);
    /* GET_ID without a serial: 20 zero bytes. */
    memset(gpa(DATA), 0xff, 20);
    assert_int_equal(request(VIRTIO_BLK_T_GET_ID, 0, 20, &status), 21);
    assert_memory_equal(gpa(DATA), "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20);
}

static void test_open_errors(void **state)
{
    struct error err;
    struct virtio_blk *other = NULL;
    /* The image is locked by the fixture's device. */
    assert_int_equal(virtio_blk_create(&other, &fx.disk, &fx.loop, &fx.mem, &fx.log, &err), -EBUSY);
    assert_non_null(strstr(err.msg, "is in use by another VM or process"));

    struct disk_config d = {.path = "/nonexistent/x.img", .queue_size = 16};
    assert_int_equal(virtio_blk_create(&other, &d, &fx.loop, &fx.mem, &fx.log, &err), -ENOENT);
    assert_string_equal(err.msg, "--disk: '/nonexistent/x.img': No such file or directory");
    d.path = "/tmp";
    assert_true(virtio_blk_create(&other, &d, &fx.loop, &fx.mem, &fx.log, &err) < 0);
    assert_string_equal(err.msg, "--disk: '/tmp' is a directory (expected a raw disk image)");

    char odd[64];
    snprintf(odd, sizeof(odd), "/tmp/kiln-blk-odd-%d.img", (int)getpid());
    int fd = open(odd, O_CREAT | O_TRUNC | O_RDWR, 0600);
    assert_int_equal(ftruncate(fd, 1000), 0);
    close(fd);
    d.path = odd;
    assert_int_equal(virtio_blk_create(&other, &d, &fx.loop, &fx.mem, &fx.log, &err), -EINVAL);
    char expected[256];
    snprintf(expected, sizeof(expected),
             "--disk: '%s' is 1000 bytes, not a multiple of 512 (expected whole sectors; e.g. "
             "truncate -s 1024)",
             odd);
    assert_string_equal(err.msg, expected);
    fd = open(odd, O_TRUNC | O_RDWR);
    close(fd);
    assert_int_equal(virtio_blk_create(&other, &d, &fx.loop, &fx.mem, &fx.log, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "is empty"));
    unlink(odd);
}

/* The one thread of the thread pool (main sets UV_THREADPOOL_SIZE=1) held by a job of the
 * test's own, so a request queued behind it has surely not started: what a slow disk does. */
static uv_sem_t pool_release;
static uv_work_t pool_blocker;

static void hold_pool(uv_work_t *work)
{
    uv_sem_wait(&pool_release);
}
static void pool_held_done(uv_work_t *work, int status)
{
}

static void block_pool(void)
{
    assert_int_equal(uv_sem_init(&pool_release, 0), 0);
    assert_int_equal(uv_queue_work(&fx.loop, &pool_blocker, hold_pool, pool_held_done), 0);
}

static void unblock_pool_and_run(void)
{
    uv_sem_post(&pool_release);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    uv_sem_destroy(&pool_release);
}

/* Makes chain `head` available and rings once, without running the loop: what the device
 * handed to the thread pool is still in flight afterwards. */
static void offer(uint16_t head)
{
    struct vring_avail *avail = gpa(FAKE_AVAIL);
    avail->ring[fx.avail_idx % fx.disk.queue_size] = head;
    fx.avail_idx++;
    avail->idx = fx.avail_idx;
    virtio_dev_handle_notify(fx.t.dev, 0);
}

/* Issue #15: a driver re-offering one head without waiting had 100,000 requests in flight
 * with a 16-entry queue. A busy head offered again now ends in DEVICE_NEEDS_RESET. */
static void test_busy_head_offered_again_needs_reset(void **state)
{
    header(VIRTIO_BLK_T_IN, 0);
    desc(0, HDR, 16, N, 1);
    desc(1, DATA, 512, N | W, 2);
    desc(2, STATUS, 1, W, 0);
    offer(0);
    assert_int_equal(virtio_blk_in_flight(fx.blk), 1);
    for (unsigned i = 0; i < 100; i++)
        offer(0);
    assert_int_equal(virtio_blk_in_flight(fx.blk), 1);
    assert_true(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    assert_int_equal(virtio_blk_in_flight(fx.blk), 0);
    /* The request the device did take is still answered (the ring is not trusted for new
     * ones, but a used entry for a held head is the driver's to read). */
    assert_int_equal(((struct vring_used *)gpa(FAKE_USED))->idx, 1);
}

/* Segments over the advertised max_discard_sectors / max_write_zeroes_sectors are refused with
 * IOERR (as QEMU does; UNSUPP is for unknown types and flags, and the range itself is valid),
 * so one request cannot discard or zero more than the driver was told it may. */
static void test_segments_over_the_advertised_limit(void **state)
{
    struct virtio_blk_config c;
    for (unsigned i = 0; i < sizeof(c); i++)
        virtio_mmio_bus_ops.read(&fx.t, VIRTIO_MMIO_CONFIG + i, (uint8_t *)&c + i, 1);
    assert_true(c.max_discard_sectors + 1ULL < c.capacity);
    uint8_t status;
    segment_request(VIRTIO_BLK_T_DISCARD, 0, c.max_discard_sectors + 1, 0, &status);
    assert_int_equal(status, VIRTIO_BLK_S_IOERR);
    segment_request(VIRTIO_BLK_T_WRITE_ZEROES, 0, c.max_write_zeroes_sectors + 1, 0, &status);
    assert_int_equal(status, VIRTIO_BLK_S_IOERR);
    assert_int_equal(fx.t.dev->device_errors, 2);
    segment_request(VIRTIO_BLK_T_DISCARD, 0, 8, 0, &status);
    assert_int_equal(status, VIRTIO_BLK_S_OK);
}

/* Issue #15: a read issued before a reset wrote guest memory after it. Once the reset
 * returns, no earlier request may touch the driver's buffers (they may be reused by then). */
static void test_read_before_reset_never_lands_after_it(void **state)
{
    uint8_t status;
    memset(gpa(DATA), 0x5a, 512);
    assert_int_equal(request(VIRTIO_BLK_T_OUT, 3, 512, &status), 1);
    memset(gpa(DATA), 0xee, 512);
    *(uint8_t *)gpa(STATUS) = 0xee;
    block_pool();
    header(VIRTIO_BLK_T_IN, 3);
    desc(1, DATA, 512, N | W, 2);
    offer(0);
    assert_int_equal(virtio_blk_in_flight(fx.blk), 1);
    wr(VIRTIO_MMIO_STATUS, 0);
    unblock_pool_and_run();
    assert_int_equal(virtio_blk_in_flight(fx.blk), 0);
    assert_int_equal(((uint8_t *)gpa(DATA))[0], 0xee);
    assert_int_equal(((uint8_t *)gpa(DATA))[511], 0xee);
    assert_int_equal(*(uint8_t *)gpa(STATUS), 0xee);
}

/* Issue #15: a write issued before a reset could land after one issued after it. Once the
 * reset returns, an earlier write never reaches the disk, so the later one is the last. */
static void test_write_before_reset_never_lands_after_it(void **state)
{
    uint8_t status;
    block_pool();
    memset(gpa(DATA), 0xaa, 512);
    header(VIRTIO_BLK_T_OUT, 5);
    desc(0, HDR, 16, N, 1);
    desc(1, DATA, 512, N, 2);
    desc(2, STATUS, 1, W, 0);
    offer(0);
    wr(VIRTIO_MMIO_STATUS, 0);
    unblock_pool_and_run();
    uint8_t on_disk[512];
    read_file(5 * 512, on_disk, sizeof(on_disk));
    assert_int_equal(on_disk[0], 0);
    /* The driver comes back and writes the same sector: that write is what stays. */
    fx.avail_idx = 0;
    bring_up();
    memset(gpa(DATA), 0xbb, 512);
    assert_int_equal(request(VIRTIO_BLK_T_OUT, 5, 512, &status), 1);
    assert_int_equal(status, VIRTIO_BLK_S_OK);
    read_file(5 * 512, on_disk, sizeof(on_disk));
    assert_int_equal(on_disk[0], 0xbb);
    assert_int_equal(on_disk[511], 0xbb);
}

/* Issue #15: one doorbell took every chain the driver kept adding. Now it takes a budget's
 * worth (32), asks the loop to come back (a kick), and the next turn takes the rest. */
static void test_one_doorbell_takes_a_budget_of_chains(void **state)
{
    const unsigned chains = 64; /* two descriptors each fill the 128-entry queue */
    header(VIRTIO_BLK_T_FLUSH, 0);
    struct vring_avail *avail = gpa(FAKE_AVAIL);
    for (unsigned i = 0; i < chains; i++) {
        desc(2 * i, HDR, 16, N, (uint16_t)(2 * i + 1));
        desc(2 * i + 1, STATUS + i, 1, W, 0);
        avail->ring[i] = (uint16_t)(2 * i);
    }
    avail->idx = (uint16_t)chains;
    fx.kicks = 0; /* DRIVER_OK kicked the queue once already */
    virtio_dev_handle_notify(fx.t.dev, 0);
    assert_int_equal(virtio_blk_in_flight(fx.blk), 32);
    assert_int_equal(fx.kicks, 1);
    /* The kick's doorbell, as the loop would deliver it. */
    virtio_dev_handle_notify(fx.t.dev, 0);
    assert_int_equal(virtio_blk_in_flight(fx.blk), 64);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    struct vring_used *used = gpa(FAKE_USED);
    assert_int_equal(used->idx, chains);
    for (unsigned i = 0; i < chains; i++)
        assert_int_equal(*(uint8_t *)gpa(STATUS + i), VIRTIO_BLK_S_OK);
    assert_int_equal(used->flags, 0); /* drained: doorbells are wanted again */
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    /* One pool thread, so block_pool() can hold back every request behind it. libuv reads
     * this once, before its first job. */
    setenv("UV_THREADPOOL_SIZE", "1", 1);
    const struct CMUnitTest tests[] = {
        T(test_config_space),
        T(test_write_then_read),
        T(test_multi_segment_read),
        T(test_out_of_range_sectors),
        T(test_flush_get_id_and_unsupported),
        T(test_discard_and_write_zeroes),
        T(test_counters_count_requests_and_bytes),
        T(test_counters_read_from_another_thread),
        T(test_malformed_requests),
        T(test_completion_after_reset_is_dropped),
        T(test_busy_head_offered_again_needs_reset),
        cmocka_unit_test_setup_teardown(test_segments_over_the_advertised_limit, setup_big_disk,
                                        teardown),
        T(test_read_before_reset_never_lands_after_it),
        T(test_write_before_reset_never_lands_after_it),
        cmocka_unit_test_setup_teardown(test_one_doorbell_takes_a_budget_of_chains, setup_big_queue,
                                        teardown),
        T(test_completion_after_queue_restart_is_dropped),
        cmocka_unit_test_setup_teardown(test_readonly_disk, setup_readonly, teardown),
        T(test_open_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
