/* Unit tests for virtio-console without KVM: transmit chains reach the console's file, a chain
 * that finds the console buffer full waits and is written once it drains (nothing lost),
 * host input fills receive buffers only as far as the guest gave room, and F_SIZE. */
#include <fcntl.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/devices/virtio_console.h"
#include "virtio_fake.h"

#define RX_DESC  0x10000ULL
#define RX_AVAIL 0x12000ULL
#define RX_USED  0x13000ULL
#define TX_DESC  0x20000ULL
#define TX_AVAIL 0x22000ULL
#define TX_USED  0x23000ULL
#define BUF      0x100000ULL

static struct {
    char path[64];
    struct console console;
    struct guest_mem mem;
    struct log log;
    struct virtio_console_dev dev;
    struct virtio_mmio t;
    struct console_device as_console;
    uint16_t rx_avail, tx_avail;
} fx;

static void no_irq(void *opaque)
{
}
static void no_kick(void *opaque, unsigned q)
{
}
static void *gpa(uint64_t a)
{
    return guest_mem_ptr(&fx.mem, a, 1);
}

static void wr(uint64_t offset, uint32_t v)
{
    fake_mmio_write(&fx.t, offset, v);
}

static int setup(void **state)
{
    memset(&fx, 0, sizeof(fx));
    snprintf(fx.path, sizeof(fx.path), "/tmp/kiln-vcon-test-%d.log", (int)getpid());
    fx.log.level = LOG_ERROR;
    fx.log.out = fopen("/dev/null", "w");
    if (console_open(&fx.console, "--console", CONSOLE_FILE, fx.path, false, NULL) < 0 ||
        guest_mem_init(&fx.mem, FAKE_RAM, NULL) < 0)
        return -1;
    if (virtio_console_init(&fx.dev, &fx.console, &fx.mem, &fx.log, NULL) < 0)
        return -1;
    struct virtio_mmio_host host = {.raise_irq = no_irq, .kick = no_kick};
    virtio_mmio_init(&fx.t, &fx.dev.vdev, &host, 0xd0000000);
    /* What console_attach would do, without a loop: the console feeds this device. */
    virtio_console_as_console_device(&fx.dev, &fx.as_console);
    fx.console.device = fx.as_console;
    fx.console.device_attached = true;
    uint32_t s = fake_mmio_negotiate(&fx.t, 1u << VIRTIO_CONSOLE_F_SIZE);
    fake_mmio_queue(&fx.t, VIRTIO_CONSOLE_QUEUE_RX, RX_DESC, RX_AVAIL, RX_USED);
    fake_mmio_queue(&fx.t, VIRTIO_CONSOLE_QUEUE_TX, TX_DESC, TX_AVAIL, TX_USED);
    wr(VIRTIO_MMIO_STATUS, s | VIRTIO_CONFIG_S_DRIVER_OK);
    return 0;
}

static int teardown(void **state)
{
    virtio_console_destroy(&fx.dev);
    console_close(&fx.console);
    guest_mem_destroy(&fx.mem);
    fclose(fx.log.out);
    unlink(fx.path);
    return 0;
}

static void add_chain(uint64_t desc_table, uint64_t avail_gpa, uint16_t *idx, unsigned i,
                      uint64_t addr, uint32_t len, uint16_t flags)
{
    struct vring_desc d = {.addr = addr, .len = len, .flags = flags};
    memcpy((uint8_t *)gpa(desc_table) + i * sizeof(d), &d, sizeof(d));
    struct vring_avail *avail = gpa(avail_gpa);
    avail->ring[*idx % 16] = (uint16_t)i;
    (*idx)++;
    avail->idx = *idx;
}

static void guest_writes(unsigned i, const char *text)
{
    memcpy(gpa(BUF + i * 0x1000), text, strlen(text));
    add_chain(TX_DESC, TX_AVAIL, &fx.tx_avail, i, BUF + i * 0x1000, (uint32_t)strlen(text), 0);
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_CONSOLE_QUEUE_TX);
}

static char *file_contents(size_t *len)
{
    static char buf[CONSOLE_OUT_CAPACITY + 64];
    int fd = open(fx.path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    assert_true(n >= 0);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

static void test_transmit_reaches_the_console(void **state)
{
    guest_writes(0, "hello from hvc0\n");
    assert_int_equal(((struct vring_used *)gpa(TX_USED))->idx, 1);
    console_flush(&fx.console);
    size_t len;
    assert_string_equal(file_contents(&len), "hello from hvc0\n");
}

static struct virtio_console_counters counted(void)
{
    struct virtio_console_counters c;
    virtio_console_counters(&fx.dev, &c);
    return c;
}

/* Bytes each way as the user reads them: what went into the console buffer and what the guest
 * was given, not what was offered. */
static void test_counters_count_bytes(void **state)
{
    assert_int_equal(counted().rx_bytes + counted().tx_bytes, 0);
    guest_writes(0, "hello from hvc0\n");
    guest_writes(1, "ok\n");
    assert_int_equal(counted().tx_bytes, 19);
    add_chain(RX_DESC, RX_AVAIL, &fx.rx_avail, 0, BUF, 2, VRING_DESC_F_WRITE);
    assert_int_equal(fx.as_console.receive(fx.as_console.opaque, (const uint8_t *)"xyz", 3), 2);
    assert_int_equal(counted().rx_bytes, 2);
    add_chain(RX_DESC, RX_AVAIL, &fx.rx_avail, 1, BUF + 0x1000, 8, VRING_DESC_F_WRITE);
    assert_int_equal(fx.as_console.receive(fx.as_console.opaque, (const uint8_t *)"z", 1), 1);
    assert_int_equal(counted().rx_bytes, 3);
    assert_int_equal(counted().tx_bytes, 19);
    struct virtqueue_counters tx, rx;
    virtio_dev_queue_counters(&fx.dev.vdev, VIRTIO_CONSOLE_QUEUE_TX, &tx);
    virtio_dev_queue_counters(&fx.dev.vdev, VIRTIO_CONSOLE_QUEUE_RX, &rx);
    assert_int_equal(tx.notifications, 2);
    assert_int_equal(tx.chains, 2);
    assert_int_equal(tx.used, 2);
    assert_int_equal(rx.notifications, 0); /* input came from the host, not a doorbell */
    assert_int_equal(rx.chains, 2);
    assert_int_equal(rx.used, 2);
}

static void test_full_console_buffer_holds_the_chain(void **state)
{
    static uint8_t filler[CONSOLE_OUT_CAPACITY - 2];
    memset(filler, '.', sizeof(filler));
    assert_int_equal(console_write(&fx.console, filler, sizeof(filler)), sizeof(filler));
    guest_writes(0, "abcdef"); /* 2 bytes fit; the chain waits for the rest */
    assert_int_equal(((struct vring_used *)gpa(TX_USED))->idx, 0);
    assert_int_equal(counted().tx_bytes, 2);
    console_flush(&fx.console); /* writes the buffer, then tells the device to go on */
    assert_int_equal(((struct vring_used *)gpa(TX_USED))->idx, 1);
    assert_int_equal(counted().tx_bytes, 6); /* each byte counted once */
    console_flush(&fx.console);
    size_t len;
    char *out = file_contents(&len);
    assert_int_equal(len, sizeof(filler) + 6);
    assert_memory_equal(out + sizeof(filler), "abcdef", 6);
}

/* A transmit chain waiting for console room when the driver stops the transmit queue
 * (QueueReady=0) and starts it again is the old queue's: it must not come back in the new
 * one, nor its rest be written (found by fuzz_console_device). */
static void test_held_chain_dropped_when_queue_restarts(void **state)
{
    static uint8_t filler[CONSOLE_OUT_CAPACITY - 2];
    memset(filler, '.', sizeof(filler));
    assert_int_equal(console_write(&fx.console, filler, sizeof(filler)), sizeof(filler));
    guest_writes(0, "abcdef"); /* 2 bytes fit; the chain waits for the rest */
    wr(VIRTIO_MMIO_QUEUE_SEL, VIRTIO_CONSOLE_QUEUE_TX);
    wr(VIRTIO_MMIO_QUEUE_READY, 0);
    ((struct vring_avail *)gpa(TX_AVAIL))->idx = 0; /* the driver starts the queue afresh */
    wr(VIRTIO_MMIO_QUEUE_READY, 1);
    console_flush(&fx.console); /* room again: the device goes on transmitting */
    assert_int_equal(((struct vring_used *)gpa(TX_USED))->idx, 0);
    console_flush(&fx.console);
    size_t len;
    char *out = file_contents(&len);
    assert_int_equal(len, sizeof(filler) + 2);
    assert_memory_equal(out + sizeof(filler), "ab", 2);
}

static void test_input_fills_receive_buffers(void **state)
{
    assert_int_equal(fx.as_console.receive(fx.as_console.opaque, (const uint8_t *)"xyz", 3), 0);
    add_chain(RX_DESC, RX_AVAIL, &fx.rx_avail, 0, BUF, 2, VRING_DESC_F_WRITE);
    assert_int_equal(fx.as_console.receive(fx.as_console.opaque, (const uint8_t *)"xyz", 3), 2);
    assert_memory_equal(gpa(BUF), "xy", 2);
    struct vring_used *used = gpa(RX_USED);
    assert_int_equal(used->idx, 1);
    assert_int_equal(used->ring[0].len, 2);
}

/* The one bad-chain policy: an unusable receive buffer goes back unused and the input takes
 * the next one; a device that needs a reset takes no input at all (it used to write into it). */
static void test_bad_receive_buffer_given_back(void **state)
{
    add_chain(RX_DESC, RX_AVAIL, &fx.rx_avail, 0, BUF, 8, 0); /* device-readable */
    add_chain(RX_DESC, RX_AVAIL, &fx.rx_avail, 1, BUF + 0x1000, 8, VRING_DESC_F_WRITE);
    assert_int_equal(fx.as_console.receive(fx.as_console.opaque, (const uint8_t *)"abc", 3), 3);
    struct vring_used *used = gpa(RX_USED);
    assert_int_equal(used->idx, 2);
    assert_int_equal(used->ring[0].id, 0);
    assert_int_equal(used->ring[0].len, 0);
    assert_int_equal(used->ring[1].id, 1);
    assert_int_equal(used->ring[1].len, 3);
    assert_memory_equal(gpa(BUF + 0x1000), "abc", 3);
}

static void test_no_input_after_needs_reset(void **state)
{
    add_chain(RX_DESC, RX_AVAIL, &fx.rx_avail, 0, BUF, 8, VRING_DESC_F_WRITE);
    virtio_dev_lock(&fx.dev.vdev);
    virtio_dev_needs_reset(&fx.dev.vdev, "test");
    virtio_dev_unlock(&fx.dev.vdev);
    memset(gpa(BUF), 0, 8);
    assert_int_equal(fx.as_console.receive(fx.as_console.opaque, (const uint8_t *)"abc", 3), 0);
    assert_int_equal(((struct vring_used *)gpa(RX_USED))->idx, 0);
    assert_int_equal(*(uint8_t *)gpa(BUF), 0);
}

static void test_terminal_size(void **state)
{
    virtio_console_set_size(&fx.dev, 132, 43);
    uint16_t size[2];
    virtio_mmio_bus_ops.read(&fx.t, VIRTIO_MMIO_CONFIG, (uint8_t *)size, 4);
    assert_int_equal(size[0], 132);
    assert_int_equal(size[1], 43);
    uint32_t generation;
    virtio_mmio_bus_ops.read(&fx.t, VIRTIO_MMIO_CONFIG_GENERATION, (uint8_t *)&generation, 4);
    assert_int_equal(generation, 1);
    virtio_console_set_size(&fx.dev, 132, 43); /* unchanged: no new generation */
    virtio_mmio_bus_ops.read(&fx.t, VIRTIO_MMIO_CONFIG_GENERATION, (uint8_t *)&generation, 4);
    assert_int_equal(generation, 1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_transmit_reaches_the_console),
        T(test_counters_count_bytes),
        T(test_full_console_buffer_holds_the_chain),
        T(test_input_fills_receive_buffers),
        T(test_bad_receive_buffer_given_back),
        T(test_no_input_after_needs_reset),
        T(test_terminal_size),
        T(test_held_chain_dropped_when_queue_restarts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
