/* Snapshot state of the virtio devices without KVM: for rng, blk, net and console (and the
 * virtio-mmio window), save -> restore into a fresh device -> save gives the same bytes, the
 * restored device carries on where the first stopped, and bad saved values are refused. */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_net.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/devices/virtio_blk.h"
#include "kiln/devices/virtio_console.h"
#include "kiln/devices/virtio_net.h"
#include "kiln/devices/virtio_rng.h"
#include "virtio_fake.h"

#define Q0_DESC  0x10000ULL
#define Q0_AVAIL 0x12000ULL
#define Q0_USED  0x13000ULL
#define Q1_DESC  0x20000ULL
#define Q1_AVAIL 0x22000ULL
#define Q1_USED  0x23000ULL
#define BUF      0x100000ULL
#define W        VRING_DESC_F_WRITE
#define N        VRING_DESC_F_NEXT

/* One guest RAM shared by the "before" and "after" devices: a snapshot restores RAM too. */
static struct guest_mem mem;
static struct log quiet;

static void no_irq(void *opaque)
{
}
static void no_kick(void *opaque, unsigned q)
{
}
static const struct virtio_mmio_host host = {.raise_irq = no_irq, .kick = no_kick};

static int setup(void **state)
{
    quiet.level = LOG_ERROR;
    quiet.out = fopen("/dev/null", "w");
    return guest_mem_init(&mem, FAKE_RAM, NULL);
}

static int teardown(void **state)
{
    guest_mem_destroy(&mem);
    fclose(quiet.out);
    return 0;
}

static void *gpa(uint64_t a)
{
    return guest_mem_ptr(&mem, a, 1);
}

static void desc_at(uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                    uint16_t next)
{
    struct vring_desc d = {.addr = addr, .len = len, .flags = flags, .next = next};
    memcpy((uint8_t *)gpa(table) + i * sizeof(d), &d, sizeof(d));
}

static void make_available(uint64_t avail_gpa, uint16_t head)
{
    struct vring_avail *avail = gpa(avail_gpa);
    avail->ring[avail->idx % 16] = head;
    avail->idx++;
}

static uint16_t used_idx(uint64_t used_gpa)
{
    return ((struct vring_used *)gpa(used_gpa))->idx;
}

/* A driver's bring-up: features, queues (16 entries each), DRIVER_OK. */
static void bring_up(struct virtio_mmio *t, uint32_t features, unsigned nqueues)
{
    memset(gpa(Q0_DESC), 0, Q1_USED + 0x1000 - Q0_DESC);
    uint32_t s = fake_mmio_negotiate(t, features | (1u << VIRTIO_RING_F_EVENT_IDX));
    fake_mmio_queue(t, 0, Q0_DESC, Q0_AVAIL, Q0_USED);
    if (nqueues > 1)
        fake_mmio_queue(t, 1, Q1_DESC, Q1_AVAIL, Q1_USED);
    fake_mmio_write(t, VIRTIO_MMIO_STATUS, s | VIRTIO_CONFIG_S_DRIVER_OK);
}

static void save_window(struct virtio_mmio *t, struct virtio_mmio_state *out)
{
    virtio_dev_lock(t->dev);
    virtio_mmio_save(t, out);
    virtio_dev_unlock(t->dev);
}

static void restore_window(struct virtio_mmio *t, const struct virtio_mmio_state *in)
{
    struct error err = {{0}};
    virtio_dev_lock(t->dev);
    int r = virtio_mmio_restore(t, in, &err);
    virtio_dev_unlock(t->dev);
    if (r < 0)
        fail_msg("virtio_mmio_restore: %s", err.msg);
}

/* ---- rng ---- */

static void rng_request(struct virtio_rng *rng, unsigned i)
{
    desc_at(Q0_DESC, i, BUF + i * 0x100, 32, W, 0);
    make_available(Q0_AVAIL, (uint16_t)i);
    virtio_dev_handle_notify(&rng->vdev, 0);
}

static void test_rng_round_trip(void **state)
{
    struct virtio_rng a, b;
    struct virtio_mmio ta, tb;
    assert_int_equal(virtio_rng_init(&a, &mem, &quiet, NULL), 0);
    assert_int_equal(virtio_rng_init(&b, &mem, &quiet, NULL), 0);
    virtio_mmio_init(&ta, &a.vdev, &host, 0xd0000000);
    virtio_mmio_init(&tb, &b.vdev, &host, 0xd0000000);
    bring_up(&ta, 0, 1);
    rng_request(&a, 0);
    rng_request(&a, 1);
    fake_mmio_write(&ta, VIRTIO_MMIO_QUEUE_SEL, 0);
    assert_int_equal(used_idx(Q0_USED), 2);

    struct virtio_rng_state s1, s2;
    struct virtio_mmio_state w1, w2;
    virtio_rng_save(&a, &s1);
    save_window(&ta, &w1);
    struct error err = {{0}};
    assert_int_equal(virtio_rng_restore(&b, &s1, &err), 0);
    restore_window(&tb, &w1);
    virtio_rng_save(&b, &s2);
    save_window(&tb, &w2);
    assert_memory_equal(&s1, &s2, sizeof(s1));
    assert_memory_equal(&w1, &w2, sizeof(w1));
    /* The restored device goes on: the next request is answered in the next used slot. */
    rng_request(&b, 2);
    assert_int_equal(used_idx(Q0_USED), 3);
    assert_int_equal(((struct vring_used *)gpa(Q0_USED))->ring[2].id, 2);
    virtio_rng_destroy(&a);
    virtio_rng_destroy(&b);
}

/* Restoring must not write guest memory: the used index and flags are the guest's own. */
static void test_restore_leaves_guest_rings_alone(void **state)
{
    struct virtio_rng a, b;
    struct virtio_mmio ta;
    assert_int_equal(virtio_rng_init(&a, &mem, &quiet, NULL), 0);
    assert_int_equal(virtio_rng_init(&b, &mem, &quiet, NULL), 0);
    virtio_mmio_init(&ta, &a.vdev, &host, 0xd0000000);
    bring_up(&ta, 0, 1);
    rng_request(&a, 0);
    struct virtio_rng_state s;
    virtio_rng_save(&a, &s);
    struct vring_used *used = gpa(Q0_USED);
    used->idx = 0x1234; /* whatever RAM holds must survive the restore */
    used->flags = 0x5678;
    assert_int_equal(virtio_rng_restore(&b, &s, NULL), 0);
    assert_int_equal(used->idx, 0x1234);
    assert_int_equal(used->flags, 0x5678);
    virtio_rng_destroy(&a);
    virtio_rng_destroy(&b);
}

static void test_bad_core_states_refused(void **state)
{
    struct virtio_rng a, b;
    struct virtio_mmio ta, tb;
    assert_int_equal(virtio_rng_init(&a, &mem, &quiet, NULL), 0);
    assert_int_equal(virtio_rng_init(&b, &mem, &quiet, NULL), 0);
    virtio_mmio_init(&ta, &a.vdev, &host, 0xd0000000);
    virtio_mmio_init(&tb, &b.vdev, &host, 0xd0000000);
    bring_up(&ta, 0, 1);
    struct virtio_rng_state good, bad;
    virtio_rng_save(&a, &good);
    struct error err = {{0}};

    bad = good;
    bad.dev.device_features |= 1ULL << 20; /* another device configuration */
    assert_int_equal(virtio_rng_restore(&b, &bad, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "features"));
    bad = good;
    bad.dev.device_id = 2;
    assert_int_equal(virtio_rng_restore(&b, &bad, &err), -EINVAL);
    bad = good;
    bad.dev.driver_features |= 1ULL << 40; /* never offered */
    assert_int_equal(virtio_rng_restore(&b, &bad, &err), -EINVAL);
    bad = good;
    bad.dev.status |= 0x100;
    assert_int_equal(virtio_rng_restore(&b, &bad, &err), -EINVAL);
    bad = good;
    bad.dev.queues[0].used_gpa = FAKE_RAM - 8; /* ring runs out of guest RAM */
    assert_int_equal(virtio_rng_restore(&b, &bad, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "queue 0"));
    assert_false(b.vdev.queues[0].ready);
    bad = good;
    bad.dev.queues[0].size = 12; /* not a power of 2 */
    assert_int_equal(virtio_rng_restore(&b, &bad, &err), -EINVAL);
    bad = good;
    bad.dev.queues[3].ready = 1; /* a queue rng does not have */
    assert_int_equal(virtio_rng_restore(&b, &bad, &err), -EINVAL);

    struct virtio_mmio_state w;
    save_window(&ta, &w);
    w.interrupt_status = 0x80;
    virtio_dev_lock(tb.dev);
    assert_int_equal(virtio_mmio_restore(&tb, &w, &err), -EINVAL);
    virtio_dev_unlock(tb.dev);
    virtio_rng_destroy(&a);
    virtio_rng_destroy(&b);
}

/* ---- blk ---- */

struct disk_fixture {
    char path[64];
    struct disk_config disk;
    uv_loop_t loop;
};

static void open_disk(struct disk_fixture *f, struct virtio_blk **out)
{
    snprintf(f->path, sizeof(f->path), "/tmp/kiln-state-test-%d.img", (int)getpid());
    int fd = open(f->path, O_CREAT | O_RDWR, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 64 * 512), 0);
    close(fd);
    f->disk =
        (struct disk_config){.path = f->path, .cache = DISK_CACHE_WRITEBACK, .queue_size = 16};
    assert_int_equal(virtio_blk_create(out, &f->disk, &f->loop, &mem, &quiet, NULL), 0);
}

static void blk_read(struct virtio_blk *blk, unsigned i)
{
    struct virtio_blk_outhdr *hdr = gpa(BUF + i * 0x1000);
    *hdr = (struct virtio_blk_outhdr){.type = VIRTIO_BLK_T_IN, .sector = 1};
    desc_at(Q0_DESC, 3 * i, BUF + i * 0x1000, sizeof(*hdr), N, (uint16_t)(3 * i + 1));
    desc_at(Q0_DESC, 3 * i + 1, BUF + i * 0x1000 + 0x100, 512, W | N, (uint16_t)(3 * i + 2));
    desc_at(Q0_DESC, 3 * i + 2, BUF + i * 0x1000 + 0x800, 1, W, 0);
    make_available(Q0_AVAIL, (uint16_t)(3 * i));
    virtio_dev_handle_notify(virtio_blk_dev(blk), 0);
}

static void test_blk_round_trip(void **state)
{
    struct disk_fixture f;
    uv_loop_init(&f.loop);
    struct virtio_blk *a, *b;
    open_disk(&f, &a);
    struct virtio_mmio ta, tb;
    virtio_mmio_init(&ta, virtio_blk_dev(a), &host, 0xd0000000);
    bring_up(&ta, (1u << VIRTIO_BLK_F_FLUSH) | (1u << VIRTIO_BLK_F_CONFIG_WCE), 1);
    uint8_t off = 0; /* the driver turns the write cache off: guest-visible state */
    virtio_mmio_bus_ops.write(&ta, VIRTIO_MMIO_CONFIG + offsetof(struct virtio_blk_config, wce),
                              &off, 1);
    blk_read(a, 0);
    struct virtio_blk_state s1, s2;
    struct error err = {{0}};
    assert_int_equal(virtio_blk_save(a, &s1, &err), -EBUSY); /* the read is on the pool */
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_int_equal(used_idx(Q0_USED), 1);
    assert_int_equal(virtio_blk_save(a, &s1, &err), 0);
    assert_int_equal(s1.wce, 0);
    virtio_blk_destroy(a); /* lets go of the image lock, as the old VM's exit would */

    open_disk(&f, &b);
    virtio_mmio_init(&tb, virtio_blk_dev(b), &host, 0xd0000000);
    assert_int_equal(virtio_blk_restore(b, &s1, &err), 0);
    assert_int_equal(virtio_blk_save(b, &s2, &err), 0);
    assert_memory_equal(&s1, &s2, sizeof(s1));
    uint8_t wce = 0xff;
    virtio_mmio_bus_ops.read(&tb, VIRTIO_MMIO_CONFIG + offsetof(struct virtio_blk_config, wce),
                             &wce, 1);
    assert_int_equal(wce, 0);
    blk_read(b, 1);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_int_equal(used_idx(Q0_USED), 2);
    assert_int_equal(*(uint8_t *)gpa(BUF + 0x1000 + 0x800), VIRTIO_BLK_S_OK);

    s2.write_cache = 7;
    assert_int_equal(virtio_blk_restore(b, &s2, &err), -EINVAL);
    virtio_blk_destroy(b);
    uv_loop_close(&f.loop);
    unlink(f.path);
}

/* ---- net ---- */

static struct virtio_net *open_net(int *host_fd, uv_loop_t *loop, uint8_t last_mac_byte)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv), 0);
    *host_fd = sv[1];
    const uint8_t mac[6] = {2, 0, 0, 0, 0, last_mac_byte};
    struct virtio_net *net;
    assert_int_equal(virtio_net_create(&net, sv[0], mac, loop, &mem, &quiet, NULL), 0);
    assert_int_equal(virtio_net_attach(net, NULL), 0);
    return net;
}

static void close_net(struct virtio_net *net, int host_fd, uv_loop_t *loop)
{
    virtio_net_detach(net);
    uv_run(loop, UV_RUN_NOWAIT);
    virtio_net_destroy(net);
    close(host_fd);
}

static void test_net_round_trip(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    int ha, hb;
    struct virtio_net *a = open_net(&ha, &loop, 1), *b = open_net(&hb, &loop, 2);
    struct virtio_mmio ta, tb;
    virtio_mmio_init(&ta, virtio_net_dev(a), &host, 0xd0000000);
    virtio_mmio_init(&tb, virtio_net_dev(b), &host, 0xd0000000);
    bring_up(&ta, (1u << VIRTIO_NET_F_MAC) | (1u << VIRTIO_NET_F_MRG_RXBUF), 2);
    /* One receive buffer given, one frame received into it. */
    desc_at(Q0_DESC, 0, BUF, 2048, W, 0);
    make_available(Q0_AVAIL, 0);
    uint8_t frame[12 + 60] = {0};
    assert_int_equal(send(ha, frame, sizeof(frame), 0), (ssize_t)sizeof(frame));
    virtio_dev_handle_notify(virtio_net_dev(a), 0);
    assert_int_equal(used_idx(Q0_USED), 1);

    struct virtio_net_state s1, s2;
    virtio_net_save(a, &s1);
    assert_int_equal(s1.mac[5], 1);
    struct error err = {{0}};
    assert_int_equal(virtio_net_restore(b, &s1, &err), 0);
    virtio_net_save(b, &s2);
    assert_memory_equal(&s1, &s2, sizeof(s1));
    uint8_t mac[6];
    for (unsigned i = 0; i < 6; i++)
        virtio_mmio_bus_ops.read(&tb, VIRTIO_MMIO_CONFIG + i, &mac[i], 1);
    assert_int_equal(mac[5], 1); /* the guest's MAC travels with the state */
    /* b receives the next frame into the next buffer. */
    desc_at(Q0_DESC, 1, BUF + 0x1000, 2048, W, 0);
    make_available(Q0_AVAIL, 1);
    assert_int_equal(send(hb, frame, sizeof(frame), 0), (ssize_t)sizeof(frame));
    virtio_dev_handle_notify(virtio_net_dev(b), 0);
    assert_int_equal(used_idx(Q0_USED), 2);
    assert_int_equal(((struct vring_used *)gpa(Q0_USED))->ring[1].id, 1);

    s2.mtu = 10;
    assert_int_equal(virtio_net_restore(b, &s2, &err), -EINVAL);
    close_net(a, ha, &loop);
    close_net(b, hb, &loop);
    uv_loop_close(&loop);
}

/* A device whose MAC the config names (mac=, or kiln restore --clone) keeps it over the
 * snapshot's, and the driver can see that config space changed; one that was not told to
 * keep its MAC takes the saved one (the round trip above). */
static void test_net_restore_keeps_a_configured_mac(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    int ha, hb;
    struct virtio_net *a = open_net(&ha, &loop, 1), *b = open_net(&hb, &loop, 2);
    virtio_net_keep_mac(b);
    struct virtio_mmio ta, tb;
    virtio_mmio_init(&ta, virtio_net_dev(a), &host, 0xd0000000);
    virtio_mmio_init(&tb, virtio_net_dev(b), &host, 0xd0000000);
    bring_up(&ta, (1u << VIRTIO_NET_F_MAC) | (1u << VIRTIO_NET_F_MRG_RXBUF), 2);
    struct virtio_net_state saved, again;
    virtio_net_save(a, &saved);
    struct error err = {{0}};
    assert_int_equal(virtio_net_restore(b, &saved, &err), 0);
    uint8_t mac[6];
    for (unsigned i = 0; i < 6; i++)
        virtio_mmio_bus_ops.read(&tb, VIRTIO_MMIO_CONFIG + i, &mac[i], 1);
    const uint8_t own[6] = {2, 0, 0, 0, 0, 2};
    assert_memory_equal(mac, own, 6);
    uint8_t bytes[4];
    virtio_mmio_bus_ops.read(&tb, VIRTIO_MMIO_CONFIG_GENERATION, bytes, 4);
    uint32_t generation;
    memcpy(&generation, bytes, 4);
    assert_int_equal(generation, saved.dev.config_generation + 1);
    /* Everything else is the snapshot's: the driver goes on. */
    virtio_net_save(b, &again);
    assert_memory_equal(&again.dev.driver_features, &saved.dev.driver_features, 8);
    assert_int_equal(again.dev.status, saved.dev.status);
    assert_int_equal(again.mac[5], 2);
    close_net(a, ha, &loop);
    close_net(b, hb, &loop);
    uv_loop_close(&loop);
}

/* ---- console ---- */

static void test_console_resumes_a_half_written_chain(void **state)
{
    char path[64];
    snprintf(path, sizeof(path), "/tmp/kiln-state-console-%d.log", (int)getpid());
    struct console ca, cb;
    assert_int_equal(console_open(&ca, "--console", CONSOLE_FILE, path, false, NULL), 0);
    struct virtio_console_dev a, b;
    assert_int_equal(virtio_console_init(&a, &ca, &mem, &quiet, NULL), 0);
    struct virtio_mmio ta, tb;
    virtio_mmio_init(&ta, &a.vdev, &host, 0xd0000000);
    bring_up(&ta, 1u << VIRTIO_CONSOLE_F_SIZE, 2);
    virtio_console_set_size(&a, 100, 30);
    /* Fill the console buffer so the guest's chain is only half written. */
    static uint8_t filler[CONSOLE_OUT_CAPACITY - 3];
    memset(filler, '.', sizeof(filler));
    assert_int_equal(console_write(&ca, filler, sizeof(filler)), sizeof(filler));
    memcpy(gpa(BUF), "abcdefgh", 8);
    desc_at(Q1_DESC, 0, BUF, 8, 0, 0);
    make_available(Q1_AVAIL, 0);
    virtio_dev_handle_notify(&a.vdev, VIRTIO_CONSOLE_QUEUE_TX);
    assert_int_equal(used_idx(Q1_USED), 0);
    struct virtio_console_state s1, s2;
    virtio_console_save(&a, &s1);
    assert_int_equal(s1.tx_pending, 1);
    assert_int_equal(s1.tx_offset, 3);
    console_close(&ca); /* the old VM's console: "abc" reached it */

    assert_int_equal(console_open(&cb, "--console", CONSOLE_FILE, path, true, NULL), 0);
    assert_int_equal(virtio_console_init(&b, &cb, &mem, &quiet, NULL), 0);
    virtio_mmio_init(&tb, &b.vdev, &host, 0xd0000000);
    struct error err = {{0}};
    assert_int_equal(virtio_console_restore(&b, &s1, &err), 0);
    virtio_console_save(&b, &s2);
    s2.tx_pending = s1.tx_pending; /* b has not taken the chain again yet: it will */
    s2.tx_offset = s1.tx_offset;
    s2.dev.queues[VIRTIO_CONSOLE_QUEUE_TX].last_avail++;
    assert_memory_equal(&s1, &s2, sizeof(s1));
    uint16_t size[2];
    virtio_mmio_bus_ops.read(&tb, VIRTIO_MMIO_CONFIG, (uint8_t *)size, 4);
    assert_int_equal(size[0], 100);
    virtio_dev_handle_notify(&b.vdev, VIRTIO_CONSOLE_QUEUE_TX);
    assert_int_equal(used_idx(Q1_USED), 1);
    console_flush(&cb);
    console_close(&cb);
    /* The file holds the filler, "abc" before the snapshot and "defgh" after: no byte twice. */
    FILE *fp = fopen(path, "r");
    static char got[CONSOLE_OUT_CAPACITY + 64];
    size_t n = fread(got, 1, sizeof(got), fp);
    fclose(fp);
    assert_int_equal(n, sizeof(filler) + 8);
    assert_memory_equal(got + sizeof(filler), "abcdefgh", 8);

    s1.tx_offset = 1ULL << 40;
    assert_int_equal(virtio_console_restore(&b, &s1, &err), -EINVAL);
    virtio_console_destroy(&a);
    virtio_console_destroy(&b);
    unlink(path);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_rng_round_trip),
        T(test_restore_leaves_guest_rings_alone),
        T(test_bad_core_states_refused),
        T(test_blk_round_trip),
        T(test_net_round_trip),
        T(test_net_restore_keeps_a_configured_mac),
        T(test_console_resumes_a_half_written_chain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
