/* Unit tests for virtio-net without a TAP: a SOCK_SEQPACKET socketpair stands in for it (one
 * frame, with its 12-byte header, per message). Transmit gathering, receive merging across
 * buffers with num_buffers, frames held while the guest has no buffers, and bad chains. */
#include <errno.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/devices/virtio_net.h"
#include "virtio_fake.h"

#define RX_DESC  0x10000ULL
#define RX_AVAIL 0x12000ULL
#define RX_USED  0x13000ULL
#define TX_DESC  0x20000ULL
#define TX_AVAIL 0x22000ULL
#define TX_USED  0x23000ULL
#define BUF      0x100000ULL
#define HDR      sizeof(struct virtio_net_hdr_v1)
#define W        VRING_DESC_F_WRITE
#define N        VRING_DESC_F_NEXT

static struct {
    int host; /* the "TAP" from the host's side */
    uv_loop_t loop;
    struct guest_mem mem;
    struct log log;
    struct virtio_net *net;
    struct virtio_mmio t;
    uint16_t rx_avail, tx_avail;
    unsigned kicks; /* the device asking the loop to come back to a queue */
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

static void wr(uint64_t offset, uint32_t v)
{
    fake_mmio_write(&fx.t, offset, v);
}

static int open_net_with(bool mergeable, uint32_t more_features)
{
    memset(&fx, 0, sizeof(fx));
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv) < 0)
        return -1;
    fx.host = sv[1];
    fx.log.level = LOG_ERROR;
    fx.log.out = fopen("/dev/null", "w");
    uv_loop_init(&fx.loop);
    const uint8_t mac[6] = {2, 0, 0, 0, 0, 9};
    if (guest_mem_init(&fx.mem, FAKE_RAM, NULL) < 0 ||
        virtio_net_create(&fx.net, sv[0], mac, &fx.loop, &fx.mem, &fx.log, NULL) < 0)
        return -1;
    struct virtio_mmio_host host = {.raise_irq = no_irq, .kick = count_kick};
    virtio_mmio_init(&fx.t, virtio_net_dev(fx.net), &host, 0xd0000000);
    if (virtio_net_attach(fx.net, NULL) < 0)
        return -1;
    uint32_t s = fake_mmio_negotiate(
        &fx.t, (1u << VIRTIO_NET_F_MAC) | (1u << VIRTIO_RING_F_INDIRECT_DESC) | more_features |
                   (mergeable ? 1u << VIRTIO_NET_F_MRG_RXBUF : 0));
    fake_mmio_queue(&fx.t, VIRTIO_NET_QUEUE_RX, RX_DESC, RX_AVAIL, RX_USED);
    fake_mmio_queue(&fx.t, VIRTIO_NET_QUEUE_TX, TX_DESC, TX_AVAIL, TX_USED);
    wr(VIRTIO_MMIO_STATUS, s | VIRTIO_CONFIG_S_DRIVER_OK);
    return 0;
}

static int open_net(bool mergeable)
{
    return open_net_with(mergeable, 0);
}

static int setup_event_idx(void **state)
{
    return open_net_with(true, 1u << VIRTIO_RING_F_EVENT_IDX);
}

static int setup(void **state)
{
    return open_net(true);
}
static int setup_plain(void **state)
{
    return open_net(false);
}

static int teardown(void **state)
{
    virtio_net_detach(fx.net);
    uv_run(&fx.loop, UV_RUN_NOWAIT);
    virtio_net_destroy(fx.net);
    uv_loop_close(&fx.loop);
    guest_mem_destroy(&fx.mem);
    close(fx.host);
    fclose(fx.log.out);
    return 0;
}

static void desc_at(uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                    uint16_t next)
{
    struct vring_desc d = {.addr = addr, .len = len, .flags = flags, .next = next};
    memcpy((uint8_t *)gpa(table) + i * sizeof(d), &d, sizeof(d));
}

static void make_available(uint64_t avail_gpa, uint16_t *idx, uint16_t head)
{
    struct vring_avail *avail = gpa(avail_gpa);
    avail->ring[*idx % 16] = head;
    (*idx)++;
    avail->idx = *idx;
}

/* The guest gives receive buffer i (len bytes at BUF + i * 0x1000). */
static void rx_buffer(unsigned i, uint32_t len)
{
    desc_at(RX_DESC, i, BUF + i * 0x1000, len, W, 0);
    make_available(RX_AVAIL, &fx.rx_avail, (uint16_t)i);
}

static void host_send(size_t frame_len, uint8_t seed)
{
    uint8_t packet[HDR + 4000] = {0};
    for (size_t i = 0; i < frame_len; i++)
        packet[HDR + i] = (uint8_t)(seed + i);
    assert_int_equal(send(fx.host, packet, HDR + frame_len, 0), (ssize_t)(HDR + frame_len));
}

static struct vring_used *rx_used(void)
{
    return gpa(RX_USED);
}

static void test_transmit(void **state)
{
    uint8_t *hdr = gpa(BUF), *frame = gpa(BUF + 0x100);
    memset(hdr, 0, HDR);
    for (unsigned i = 0; i < 60; i++)
        frame[i] = (uint8_t)(0x40 + i);
    desc_at(TX_DESC, 0, BUF, HDR, N, 1);
    desc_at(TX_DESC, 1, BUF + 0x100, 60, 0, 0);
    make_available(TX_AVAIL, &fx.tx_avail, 0);
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_TX);
    uint8_t got[200];
    assert_int_equal(recv(fx.host, got, sizeof(got), 0), HDR + 60);
    assert_memory_equal(got + HDR, frame, 60);
    struct vring_used *used = gpa(TX_USED);
    assert_int_equal(used->idx, 1);
    assert_int_equal(used->ring[0].len, 0);
    assert_int_equal(used->flags, 0); /* drained: doorbells wanted again */
}

static uint64_t frames_handled(void)
{
    struct virtio_net_stats st;
    virtio_net_stats(fx.net, &st);
    return st.tx_frames + st.tx_dropped; /* dropped: the socket buffer was full, still taken */
}

/* Issue #15: one TX doorbell sent every frame the guest kept adding. Now it sends a budget's
 * worth (64), asks the loop to come back (a kick), and the next turn sends the rest. */
static void test_one_doorbell_sends_a_budget_of_frames(void **state)
{
    const unsigned frames = 100;
    /* A 128-entry transmit queue: a 16-entry one can never hold more than the budget. */
    wr(VIRTIO_MMIO_QUEUE_SEL, VIRTIO_NET_QUEUE_TX);
    wr(VIRTIO_MMIO_QUEUE_READY, 0);
    wr(VIRTIO_MMIO_QUEUE_NUM, 128);
    wr(VIRTIO_MMIO_QUEUE_READY, 1);
    memset(gpa(BUF), 0, HDR + 60);
    struct vring_avail *avail = gpa(TX_AVAIL);
    for (unsigned i = 0; i < frames; i++) {
        desc_at(TX_DESC, i, BUF, HDR + 60, 0, 0);
        avail->ring[i] = (uint16_t)i;
    }
    avail->idx = (uint16_t)frames;
    fx.kicks = 0;
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_TX);
    assert_int_equal(frames_handled(), 64);
    assert_int_equal(fx.kicks, 1);
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_TX); /* the kick's doorbell */
    assert_int_equal(frames_handled(), frames);
    struct vring_used *used = gpa(TX_USED);
    assert_int_equal(used->idx, frames);
    assert_int_equal(used->flags, 0); /* drained: doorbells wanted again */
}

static void test_bad_transmit_chain_is_dropped(void **state)
{
    desc_at(TX_DESC, 0, BUF, 100, W, 0); /* device-writable: not a frame to send */
    make_available(TX_AVAIL, &fx.tx_avail, 0);
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_TX);
    uint8_t got[200];
    assert_int_equal(recv(fx.host, got, sizeof(got), 0), -1);
    struct virtio_net_stats st;
    virtio_net_stats(fx.net, &st);
    assert_int_equal(st.tx_dropped, 1);
    assert_int_equal(((struct vring_used *)gpa(TX_USED))->idx, 1);
}

static void test_receive_merges_buffers(void **state)
{
    for (unsigned i = 0; i < 3; i++)
        rx_buffer(i, 1500);
    host_send(3000, 7); /* 3012 bytes with the header: 1500 + 1500 + 12 */
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_RX);
    uv_run(&fx.loop, UV_RUN_NOWAIT);
    assert_int_equal(rx_used()->idx, 3);
    assert_int_equal(rx_used()->ring[0].len, 1500);
    assert_int_equal(rx_used()->ring[2].len, 12);
    struct virtio_net_hdr_v1 *hdr = gpa(BUF);
    assert_int_equal(hdr->num_buffers, 3);
    uint8_t *second = gpa(BUF + 0x1000);
    assert_int_equal(second[0], (uint8_t)(7 + 1500 - HDR));
}

static struct virtqueue_counters queue_counters(unsigned q)
{
    struct virtqueue_counters c;
    virtio_dev_queue_counters(fx.t.dev, q, &c);
    return c;
}

/* Frames and bytes (without the virtio-net header) each way, drops, and each queue's chains
 * and used entries, as a user reads them while the VM runs. */
static void test_counters_count_frames_and_bytes(void **state)
{
    struct virtio_net_stats st;
    virtio_net_stats(fx.net, &st);
    struct virtio_net_stats zero = {0};
    assert_memory_equal(&st, &zero, sizeof(st));

    memset(gpa(BUF), 0, HDR + 100);
    desc_at(TX_DESC, 0, BUF, HDR + 60, 0, 0);
    desc_at(TX_DESC, 1, BUF, HDR, N, 2); /* the second frame split after its header */
    desc_at(TX_DESC, 2, BUF + HDR, 100, 0, 0);
    desc_at(TX_DESC, 3, BUF, 100, W, 0); /* device-writable: dropped, a bad chain */
    make_available(TX_AVAIL, &fx.tx_avail, 0);
    make_available(TX_AVAIL, &fx.tx_avail, 1);
    make_available(TX_AVAIL, &fx.tx_avail, 3);
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_TX);
    uint8_t got[200];
    assert_int_equal(recv(fx.host, got, sizeof(got), 0), HDR + 60);
    assert_int_equal(recv(fx.host, got, sizeof(got), 0), HDR + 100);

    for (unsigned i = 0; i < 3; i++)
        rx_buffer(i, 1500);
    host_send(3000, 7); /* merged into three buffers */
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_RX);
    uv_run(&fx.loop, UV_RUN_NOWAIT);
    assert_int_equal(rx_used()->idx, 3);

    virtio_net_stats(fx.net, &st);
    assert_int_equal(st.tx_frames, 2);
    assert_int_equal(st.tx_bytes, 160);
    assert_int_equal(st.tx_dropped, 1);
    assert_int_equal(st.rx_frames, 1);
    assert_int_equal(st.rx_bytes, 3000);
    assert_int_equal(st.rx_dropped, 0);
    struct virtqueue_counters tx = queue_counters(VIRTIO_NET_QUEUE_TX);
    assert_int_equal(tx.notifications, 1);
    assert_int_equal(tx.chains, 3);
    assert_int_equal(tx.used, 3);
    assert_int_equal(tx.bad_chains, 1);
    struct virtqueue_counters rx = queue_counters(VIRTIO_NET_QUEUE_RX);
    assert_int_equal(rx.notifications, 1);
    assert_int_equal(rx.chains, 3);
    assert_int_equal(rx.used, 3);
    assert_int_equal(rx.bad_chains, 0);
    assert_true(rx.interrupts >= 1);
    struct virtqueue_counters none = queue_counters(2); /* no such queue: all zero */
    assert_int_equal(none.chains + none.used + none.notifications, 0);
}

static void test_frame_waits_for_buffers(void **state)
{
    host_send(100, 1);
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_RX); /* no buffers yet */
    uv_run(&fx.loop, UV_RUN_NOWAIT);
    assert_int_equal(rx_used()->idx, 0);
    rx_buffer(0, 2048);
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_RX); /* the guest's kick */
    assert_int_equal(rx_used()->idx, 1);
    assert_int_equal(rx_used()->ring[0].len, HDR + 100);
    struct virtio_net_stats st;
    virtio_net_stats(fx.net, &st);
    assert_int_equal(st.rx_frames, 1);
    assert_int_equal(st.rx_dropped, 0);
    /* While we hold buffers the guest need not kick for more: the queue is quiet. */
    assert_int_equal(rx_used()->flags, VRING_USED_F_NO_NOTIFY);
    /* With buffers, polling the "TAP" delivers the next frame without a kick. */
    rx_buffer(1, 2048);
    host_send(50, 2);
    uv_run(&fx.loop, UV_RUN_NOWAIT);
    assert_int_equal(rx_used()->idx, 2);
    /* Out of buffers with a frame waiting: now a kick is wanted. */
    host_send(50, 3);
    uv_run(&fx.loop, UV_RUN_NOWAIT);
    assert_int_equal(rx_used()->idx, 2);
    assert_int_equal(rx_used()->flags, 0);
    /* A buffer added without a kick is still found: receive() asked, and looked again. */
    rx_buffer(2, 2048);
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_RX);
    assert_int_equal(rx_used()->idx, 3);
}

static void test_too_small_buffer_without_merging(void **state)
{
    rx_buffer(0, 64);
    host_send(200, 3); /* 212 bytes > 64: dropped, the buffer kept */
    host_send(40, 4);  /* 52 bytes: fits */
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_RX);
    assert_int_equal(rx_used()->idx, 1);
    assert_int_equal(rx_used()->ring[0].len, HDR + 40);
    struct virtio_net_stats st;
    virtio_net_stats(fx.net, &st);
    assert_int_equal(st.rx_dropped, 1);
    assert_int_equal(st.rx_frames, 1);
}

/* kiln's one bad-chain policy (virtio_dev.h): a receive buffer the device cannot write into
 * goes back unused (length 0), the queue lives on, and the frame takes the next buffer. */
static void test_unwritable_receive_buffer_given_back(void **state)
{
    desc_at(RX_DESC, 0, BUF, 2048, 0, 0); /* device-readable receive buffer */
    make_available(RX_AVAIL, &fx.rx_avail, 0);
    rx_buffer(1, 2048);
    host_send(10, 0);
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_RX);
    assert_false(fx.t.dev->status & VIRTIO_CONFIG_S_NEEDS_RESET);
    assert_int_equal(rx_used()->idx, 2);
    assert_int_equal(rx_used()->ring[0].id, 0);
    assert_int_equal(rx_used()->ring[0].len, 0);
    assert_int_equal(rx_used()->ring[1].id, 1);
    assert_int_equal(rx_used()->ring[1].len, HDR + 10);
    assert_int_equal(fx.t.dev->device_errors, 1);
}

static void test_config_space(void **state)
{
    struct virtio_net_config c;
    for (unsigned i = 0; i < sizeof(c); i++)
        virtio_mmio_bus_ops.read(&fx.t, VIRTIO_MMIO_CONFIG + i, (uint8_t *)&c + i, 1);
    const uint8_t mac[6] = {2, 0, 0, 0, 0, 9};
    assert_memory_equal(c.mac, mac, 6);
    assert_int_equal(c.status, VIRTIO_NET_S_LINK_UP);
    assert_int_equal(c.mtu, 1500);
    uint32_t features;
    wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    virtio_mmio_bus_ops.read(&fx.t, VIRTIO_MMIO_DEVICE_FEATURES, (uint8_t *)&features, 4);
    uint32_t want = (1u << VIRTIO_NET_F_CSUM) | (1u << VIRTIO_NET_F_GUEST_CSUM) |
                    (1u << VIRTIO_NET_F_GUEST_TSO4) | (1u << VIRTIO_NET_F_GUEST_TSO6) |
                    (1u << VIRTIO_NET_F_HOST_TSO4) | (1u << VIRTIO_NET_F_HOST_TSO6) |
                    (1u << VIRTIO_NET_F_MRG_RXBUF) | (1u << VIRTIO_NET_F_MAC) |
                    (1u << VIRTIO_NET_F_STATUS) | (1u << VIRTIO_NET_F_MTU);
    assert_int_equal(features & want, want);
}

/* A header with offload fields set passes to the TAP unchanged, whichever way the guest splits
 * header and frame over descriptors, directly or through an indirect table. */
static void test_transmit_gathers_any_split(void **state)
{
    struct virtio_net_hdr_v1 hdr = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                                    .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
                                    .hdr_len = 54,
                                    .gso_size = 1448,
                                    .csum_start = 34,
                                    .csum_offset = 16};
    uint8_t *mem = gpa(BUF);
    memcpy(mem, &hdr, HDR);
    for (unsigned i = 0; i < 300; i++)
        mem[HDR + i] = (uint8_t)(i * 7);
    /* 5 + 7 bytes of header, then the frame in 3 pieces: 1, 199, 100 bytes. */
    desc_at(TX_DESC, 0, BUF, 5, N, 1);
    desc_at(TX_DESC, 1, BUF + 5, 7, N, 2);
    desc_at(TX_DESC, 2, BUF + HDR, 1, N, 3);
    desc_at(TX_DESC, 3, BUF + HDR + 1, 199, N, 4);
    desc_at(TX_DESC, 4, BUF + HDR + 200, 100, 0, 0);
    make_available(TX_AVAIL, &fx.tx_avail, 0);
    /* The same bytes through an indirect table of two entries. */
    desc_at(FAKE_INDIRECT, 0, BUF, HDR + 150, N, 1);
    desc_at(FAKE_INDIRECT, 1, BUF + HDR + 150, 150, 0, 0);
    desc_at(TX_DESC, 5, FAKE_INDIRECT, 2 * sizeof(struct vring_desc), VRING_DESC_F_INDIRECT, 0);
    make_available(TX_AVAIL, &fx.tx_avail, 5);
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_TX);
    for (int k = 0; k < 2; k++) {
        uint8_t got[400];
        assert_int_equal(recv(fx.host, got, sizeof(got), 0), HDR + 300);
        assert_memory_equal(got, mem, HDR + 300);
    }
    struct virtio_net_stats st;
    virtio_net_stats(fx.net, &st);
    assert_int_equal(st.tx_frames, 2);
    assert_int_equal(((struct vring_used *)gpa(TX_USED))->idx, 2);
}

/* Hostile transmit chains: each is given back (used, length 0) and counted, none reaches the
 * TAP, and the device goes on working. */
static void test_hostile_transmit_chains(void **state)
{
    desc_at(TX_DESC, 0, FAKE_RAM - 8, 64, 0, 0); /* runs past the end of guest RAM */
    make_available(TX_AVAIL, &fx.tx_avail, 0);
    desc_at(TX_DESC, 1, BUF, HDR, 0, 0); /* a header and no frame */
    make_available(TX_AVAIL, &fx.tx_avail, 1);
    desc_at(TX_DESC, 2, BUF, HDR, N, 3); /* a loop: 2 -> 3 -> 2 */
    desc_at(TX_DESC, 3, BUF + HDR, 60, N, 2);
    make_available(TX_AVAIL, &fx.tx_avail, 2);
    desc_at(TX_DESC, 4, BUF, HDR, N, 40); /* next beyond the queue size */
    make_available(TX_AVAIL, &fx.tx_avail, 4);
    desc_at(TX_DESC, 5, BUF, HDR, N, 6); /* readable after writable */
    desc_at(TX_DESC, 6, BUF + HDR, 60, W, 7);
    desc_at(TX_DESC, 7, BUF + 0x100, 60, 0, 0);
    make_available(TX_AVAIL, &fx.tx_avail, 5);
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_TX);
    uint8_t got[200];
    assert_int_equal(recv(fx.host, got, sizeof(got), 0), -1);
    struct virtio_net_stats st;
    virtio_net_stats(fx.net, &st);
    assert_int_equal(st.tx_dropped, 5);
    assert_int_equal(st.tx_frames, 0);
    struct vring_used *used = gpa(TX_USED);
    assert_int_equal(used->idx, 5);
    for (unsigned i = 0; i < 5; i++)
        assert_int_equal(used->ring[i].len, 0);
    assert_false(fx.t.dev->status & VIRTIO_CONFIG_S_NEEDS_RESET);
    /* Still sends a good frame. */
    memset(gpa(BUF), 0, HDR + 60);
    desc_at(TX_DESC, 8, BUF, HDR + 60, 0, 0);
    make_available(TX_AVAIL, &fx.tx_avail, 8);
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_TX);
    assert_int_equal(recv(fx.host, got, sizeof(got), 0), HDR + 60);
    assert_int_equal(used->idx, 6);
}

/* Hostile receive buffers: outside guest RAM, or looping, go back unused (length 0) without
 * anything written anywhere; the frame waits for a good buffer. */
static void test_receive_buffer_outside_ram_given_back(void **state)
{
    desc_at(RX_DESC, 0, FAKE_RAM - 100, 2048, W, 0);
    make_available(RX_AVAIL, &fx.rx_avail, 0);
    host_send(60, 1);
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_RX);
    assert_false(fx.t.dev->status & VIRTIO_CONFIG_S_NEEDS_RESET);
    assert_int_equal(rx_used()->idx, 1);
    assert_int_equal(rx_used()->ring[0].len, 0);
    rx_buffer(1, 2048);
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_RX);
    assert_int_equal(rx_used()->idx, 2);
    assert_int_equal(rx_used()->ring[1].id, 1);
    assert_int_equal(rx_used()->ring[1].len, HDR + 60);
}

static void test_receive_chain_loop_given_back(void **state)
{
    desc_at(RX_DESC, 0, BUF, 1024, W | N, 1);
    desc_at(RX_DESC, 1, BUF + 0x1000, 1024, W | N, 0);
    make_available(RX_AVAIL, &fx.rx_avail, 0);
    host_send(60, 1);
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_RX);
    assert_false(fx.t.dev->status & VIRTIO_CONFIG_S_NEEDS_RESET);
    assert_int_equal(rx_used()->idx, 1);
    assert_int_equal(rx_used()->ring[0].len, 0);
}

/* A bad buffer among those a merged frame is spread over: the buffers taken before it cannot
 * be put back (the bad one is already given back behind them), so the frame is dropped and
 * every buffer goes back exactly once, unused; the next frame is delivered. */
static void test_bad_buffer_inside_a_merged_frame(void **state)
{
    rx_buffer(0, 1500);
    desc_at(RX_DESC, 1, FAKE_RAM - 100, 1500, W, 0); /* outside RAM */
    make_available(RX_AVAIL, &fx.rx_avail, 1);
    rx_buffer(2, 1500);
    host_send(2500, 3); /* needs two buffers */
    host_send(100, 4);
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_RX);
    assert_false(fx.t.dev->status & VIRTIO_CONFIG_S_NEEDS_RESET);
    rx_buffer(3, 1500);
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_RX);
    struct vring_used *used = rx_used();
    unsigned seen[4] = {0};
    for (uint16_t i = 0; i < used->idx; i++) {
        assert_true(used->ring[i].id < 4);
        seen[used->ring[i].id]++;
    }
    for (unsigned i = 0; i < 4; i++)
        assert_true(seen[i] <= 1); /* no buffer given back twice */
    assert_int_equal(seen[0] + seen[1], 2);
    struct virtio_net_stats st;
    virtio_net_stats(fx.net, &st);
    assert_int_equal(st.rx_dropped, 1);
    assert_int_equal(st.rx_frames, 1);
    /* The second frame landed whole in a later buffer. */
    bool found = false;
    for (uint16_t i = 0; i < used->idx; i++)
        found |= used->ring[i].len == HDR + 100;
    assert_true(found);
}

/* The TAP's header reaches the guest as it was, except num_buffers: the number of buffers used
 * with MRG_RXBUF, and 1 without it (virtio 1.2, 5.1.6.4.2), whatever the TAP left there. */
static void check_received_header(uint16_t want_buffers)
{
    struct virtio_net_hdr_v1 hdr = {.flags = VIRTIO_NET_HDR_F_DATA_VALID,
                                    .gso_type = VIRTIO_NET_HDR_GSO_TCPV6,
                                    .hdr_len = 74,
                                    .gso_size = 1428,
                                    .csum_start = 54,
                                    .csum_offset = 16,
                                    .num_buffers = 0x7777};
    uint8_t packet[HDR + 100];
    memcpy(packet, &hdr, HDR);
    memset(packet + HDR, 0xab, 100);
    assert_int_equal(send(fx.host, packet, sizeof(packet), 0), (ssize_t)sizeof(packet));
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_RX);
    assert_int_equal(rx_used()->idx, 1);
    struct virtio_net_hdr_v1 got;
    memcpy(&got, gpa(BUF), HDR);
    hdr.num_buffers = want_buffers;
    assert_memory_equal(&got, &hdr, HDR);
    assert_memory_equal((uint8_t *)gpa(BUF) + HDR, packet + HDR, 100);
}

static void test_header_with_merging(void **state)
{
    rx_buffer(0, 2048);
    check_received_header(1);
}

static void test_header_without_merging(void **state)
{
    rx_buffer(0, 2048);
    check_received_header(1);
}

/* The header split over two receive buffers: num_buffers lands in the right bytes. */
static void test_header_split_across_descriptors(void **state)
{
    desc_at(RX_DESC, 0, BUF, 11, W | N, 1); /* num_buffers' two bytes straddle the split */
    desc_at(RX_DESC, 1, BUF + 0x1000, 2048, W, 0);
    make_available(RX_AVAIL, &fx.rx_avail, 0);
    host_send(60, 5);
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_RX);
    assert_int_equal(rx_used()->idx, 1);
    assert_int_equal(rx_used()->ring[0].len, HDR + 60);
    assert_int_equal(((uint8_t *)gpa(BUF))[10], 1);
    assert_int_equal(((uint8_t *)gpa(BUF + 0x1000))[0], 0);
    assert_int_equal(((uint8_t *)gpa(BUF + 0x1000))[1], 5); /* the frame's first byte */
}

/* A broken avail ring (a head past the queue size) while transmit is quiet: the device stops
 * with NEEDS_RESET instead of taking the unchanged ring for new work forever. */
static void test_broken_transmit_ring_ends_the_drain(void **state)
{
    make_available(TX_AVAIL, &fx.tx_avail, 16);
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_TX); /* returns: that is the test */
    assert_true(fx.t.dev->status & VIRTIO_CONFIG_S_NEEDS_RESET);
}

/* A frame needing two merged buffers when the guest gave one: the device waits (it does not
 * spin on the buffer it put back) and asks for a doorbell for the next buffer. */
static void test_waiting_for_more_buffers_asks_for_the_next(void **state)
{
    rx_buffer(0, 1000);
    host_send(1500, 9);
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_RX);
    assert_int_equal(rx_used()->idx, 0);
    assert_int_equal(rx_used()->flags, 0); /* doorbells wanted */
    rx_buffer(1, 1000);
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_RX);
    assert_int_equal(rx_used()->idx, 2);
    assert_int_equal(((struct virtio_net_hdr_v1 *)gpa(BUF))->num_buffers, 2);
}

/* The same with EVENT_IDX: avail_event must name the next new slot (1), not the buffer put
 * back (0), which the driver has passed and would never ring for. */
static void test_waiting_for_more_buffers_with_event_idx(void **state)
{
    rx_buffer(0, 1000);
    host_send(1500, 9);
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_RX);
    assert_int_equal(rx_used()->idx, 0);
    uint16_t avail_event;
    memcpy(&avail_event, (uint8_t *)gpa(RX_USED) + 4 + 8 * 16, 2);
    assert_int_equal(avail_event, 1);
    rx_buffer(1, 1000);
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_RX);
    assert_int_equal(rx_used()->idx, 2);
}

/* The guest's GUEST_* features, as TAP offload flags: TSO only with checksum offload. */
static void test_offload_translation(void **state)
{
    const uint64_t csum = 1ULL << VIRTIO_NET_F_GUEST_CSUM, tso4 = 1ULL << VIRTIO_NET_F_GUEST_TSO4,
                   tso6 = 1ULL << VIRTIO_NET_F_GUEST_TSO6;
    assert_int_equal(virtio_net_tap_offloads(0), 0);
    assert_int_equal(virtio_net_tap_offloads(tso4 | tso6), 0);
    assert_int_equal(virtio_net_tap_offloads(csum), TUN_F_CSUM);
    assert_int_equal(virtio_net_tap_offloads(csum | tso4), TUN_F_CSUM | TUN_F_TSO4);
    assert_int_equal(virtio_net_tap_offloads(csum | tso4 | tso6),
                     TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6);
    /* What the guest sends (CSUM, HOST_TSO*) is not the TAP's business to accept. */
    assert_int_equal(virtio_net_tap_offloads((1ULL << VIRTIO_NET_F_CSUM) |
                                             (1ULL << VIRTIO_NET_F_HOST_TSO4) |
                                             (1ULL << VIRTIO_NET_F_MRG_RXBUF)),
                     0);
}

/* While a snapshot holds the device (its state read, guest RAM not yet), nothing it does may
 * change guest RAM: a frame from the TAP, a doorbell and a transmit chain all wait, the rings
 * stay byte for byte as they were; release looks at every ready queue again and the frame
 * and the transmit go through. */
static void test_held_device_leaves_guest_ram_alone(void **state)
{
    rx_buffer(0, 2048);
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_RX); /* polling the TAP now */
    uint8_t *hdr = gpa(BUF + 0x8000);
    memset(hdr, 0, HDR + 60);
    desc_at(TX_DESC, 0, BUF + 0x8000, HDR + 60, 0, 0);
    make_available(TX_AVAIL, &fx.tx_avail, 0);
    static uint8_t before[0x24000];
    memcpy(before, gpa(0), sizeof(before)); /* both rings and the receive buffer */
    static uint8_t buffer_before[2048];
    memcpy(buffer_before, gpa(BUF), sizeof(buffer_before));
    virtio_dev_hold(fx.t.dev);
    host_send(100, 1);
    uv_run(&fx.loop, UV_RUN_NOWAIT); /* the TAP is readable */
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_RX);
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_TX);
    uv_run(&fx.loop, UV_RUN_NOWAIT);
    assert_memory_equal(gpa(0), before, sizeof(before));
    assert_memory_equal(gpa(BUF), buffer_before, sizeof(buffer_before));
    uint8_t got[200];
    assert_int_equal(recv(fx.host, got, sizeof(got), 0), -1); /* nothing transmitted */
    unsigned kicks = fx.kicks;
    virtio_dev_release(fx.t.dev);
    assert_int_equal(fx.kicks, kicks + 2); /* both ready queues */
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_RX);
    virtio_dev_handle_notify(fx.t.dev, VIRTIO_NET_QUEUE_TX);
    assert_int_equal(rx_used()->idx, 1);
    assert_int_equal(rx_used()->ring[0].len, HDR + 100);
    assert_int_equal(recv(fx.host, got, sizeof(got), 0), HDR + 60);
}

/* A restored (or migrated) NIC may sit on another segment now: once attached, kiln announces
 * its MAC with five RARP broadcasts, as QEMU does, and counts them; a NIC that was not
 * restored sends nothing of its own (the other tests read only the guest's frames). */
static void test_restore_announces_the_mac(void **state)
{
    struct virtio_net_state saved;
    struct error err = {{0}};
    virtio_net_save(fx.net, &saved);
    virtio_net_detach(fx.net);
    uv_run(&fx.loop, UV_RUN_NOWAIT);
    assert_int_equal(virtio_net_restore(fx.net, &saved, &err), 0);
    assert_int_equal(virtio_net_attach(fx.net, &err), 0);
    uint64_t start = uv_hrtime();
    unsigned frames = 0;
    while (frames < 5 && uv_hrtime() - start < 3000000000ull) {
        uv_run(&fx.loop, UV_RUN_NOWAIT);
        uint8_t got[200];
        ssize_t n = recv(fx.host, got, sizeof(got), 0);
        if (n < 0) {
            usleep(1000);
            continue;
        }
        frames++;
        assert_int_equal(n, HDR + 60);
        static const uint8_t zero[HDR];
        assert_memory_equal(got, zero, HDR);
        const uint8_t *eth = got + HDR, *rarp = eth + 14;
        static const uint8_t broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
        static const uint8_t mac[6] = {2, 0, 0, 0, 0, 9};
        static const uint8_t rarp_head[8] = {0, 1, 8, 0, 6, 4, 0, 3};
        assert_memory_equal(eth, broadcast, 6);
        assert_memory_equal(eth + 6, mac, 6);
        assert_int_equal(eth[12] << 8 | eth[13], 0x8035);
        assert_memory_equal(rarp, rarp_head, sizeof(rarp_head));
        assert_memory_equal(rarp + 8, mac, 6);
        assert_memory_equal(rarp + 18, mac, 6);
    }
    assert_int_equal(frames, 5);
    usleep(100000); /* and no sixth: the timer has stopped */
    uv_run(&fx.loop, UV_RUN_NOWAIT);
    uint8_t more[200];
    assert_int_equal(recv(fx.host, more, sizeof(more), 0), -1);
    struct virtio_net_stats stats;
    virtio_net_stats(fx.net, &stats);
    assert_int_equal(stats.announcements, 5);
    assert_int_equal(stats.tx_frames, 0); /* the guest's frames are counted apart */
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_transmit),
        T(test_one_doorbell_sends_a_budget_of_frames),
        T(test_bad_transmit_chain_is_dropped),
        T(test_receive_merges_buffers),
        T(test_counters_count_frames_and_bytes),
        T(test_frame_waits_for_buffers),
        cmocka_unit_test_setup_teardown(test_too_small_buffer_without_merging, setup_plain,
                                        teardown),
        T(test_unwritable_receive_buffer_given_back),
        T(test_config_space),
        T(test_transmit_gathers_any_split),
        T(test_hostile_transmit_chains),
        T(test_receive_buffer_outside_ram_given_back),
        T(test_receive_chain_loop_given_back),
        T(test_bad_buffer_inside_a_merged_frame),
        T(test_header_with_merging),
        cmocka_unit_test_setup_teardown(test_header_without_merging, setup_plain, teardown),
        T(test_header_split_across_descriptors),
        cmocka_unit_test(test_offload_translation),
        T(test_restore_announces_the_mac),
        T(test_held_device_leaves_guest_ram_alone),
        T(test_broken_transmit_ring_ends_the_drain),
        T(test_waiting_for_more_buffers_asks_for_the_next),
        cmocka_unit_test_setup_teardown(test_waiting_for_more_buffers_with_event_idx,
                                        setup_event_idx, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
