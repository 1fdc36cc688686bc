/* libFuzzer target for the virtio-net device as a hostile guest drives it: the input is a
 * script of driver actions (descriptors, avail entries, doorbells, feature choice, live
 * reconfiguration) and host
 * frames on the "TAP" (a SOCK_SEQPACKET socketpair). Besides the sanitizers, the device must
 * never write the descriptor tables or avail rings, which only the driver owns. */
#include <linux/virtio_net.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../unit/virtio_fake.h"
#include "fuzz_driver.h"
#include "kiln/devices/virtio_net.h"

#define MAX_OPS 64

struct harness {
    struct fuzz_driver drv;
    struct log log;
    uv_loop_t loop;
    struct virtio_net *net;
    struct virtio_mmio t;
    int host;
};

static bool open_device(struct harness *h, uint8_t features)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv) < 0)
        return false;
    h->host = sv[1];
    uv_loop_init(&h->loop);
    const uint8_t mac[6] = {2, 0, 0, 0, 0, 1};
    if (virtio_net_create(&h->net, sv[0], mac, &h->loop, &h->drv.mem, &h->log, NULL) < 0)
        abort();
    struct virtio_mmio_host host = drv_host();
    virtio_mmio_init(&h->t, virtio_net_dev(h->net), &host, 0xd0000000);
    h->drv.dev = h->t.dev;
    if (virtio_net_attach(h->net, NULL) < 0)
        abort();
    uint32_t device_bits = 0;
    if (features & 1)
        device_bits |= 1u << VIRTIO_NET_F_MRG_RXBUF;
    if (features & 8)
        device_bits |= (1u << VIRTIO_NET_F_GUEST_CSUM) | (1u << VIRTIO_NET_F_CSUM);
    drv_bring_up(&h->drv, &h->t, device_bits, features, 2);
    return true;
}

static void close_device(struct harness *h)
{
    virtio_net_detach(h->net);
    uv_run(&h->loop, UV_RUN_NOWAIT);
    virtio_net_destroy(h->net);
    uv_loop_close(&h->loop);
    close(h->host);
}

/* Runs one device step and checks the driver-owned rings came through untouched. */
static void device_step(struct harness *h, unsigned op)
{
    drv_snapshot(&h->drv);
    if (op < 2)
        virtio_dev_handle_notify(h->t.dev, op); /* 0: RX doorbell, 1: TX doorbell */
    else
        uv_run(&h->loop, UV_RUN_NOWAIT); /* frames from the "TAP" */
    drv_check(&h->drv);
}

static void send_frame(struct harness *h, uint16_t len, uint8_t fill)
{
    static uint8_t frame[4096];
    size_t n = len % sizeof(frame);
    memset(frame, fill, n);
    ssize_t ignored = send(h->host, frame, n, MSG_DONTWAIT); /* a full queue is fine */
    (void)ignored;
}

static void drain_host(struct harness *h)
{
    static uint8_t frame[70 * 1024];
    while (recv(h->host, frame, sizeof(frame), MSG_DONTWAIT) > 0)
        ;
}

/* Input: [0] feature bits; then 8-byte ops, [0] % 8: 0 descriptor, 1 RX avail, 2 TX avail,
 * 3 host frame, 4-6 device step (RX doorbell, TX doorbell, loop), 7 host drains what the
 * device sent; [1] bit 0 picks the queue for descriptors; [0] 0xE0-0xE7 a driver store,
 * 0xE8-0xEF a live reconfiguration: QueueReady=0, ring and size writes on a live queue,
 * new features (fuzz_driver.h has the rest). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct harness h;
    uint8_t features;
    if (!drv_start(&h.drv, &h.log, &data, &size, &features) || !open_device(&h, features))
        return 0;
    for (unsigned n = 0; size >= 8 && n < MAX_OPS; n++, data += 8, size -= 8) {
        if (drv_live_op(&h.drv, &h.t, data))
            continue;
        if (drv_ring_op(&h.drv, data[0] % 8, 2, data))
            continue;
        uint16_t len;
        memcpy(&len, data + 6, 2);
        switch (data[0] % 8) {
        case 3:
            send_frame(&h, len, data[2]);
            break;
        case 7:
            drain_host(&h);
            break;
        default:
            device_step(&h, data[0] % 8 - 4u);
            break;
        }
    }
    device_step(&h, VIRTIO_NET_QUEUE_RX);
    device_step(&h, VIRTIO_NET_QUEUE_TX);
    close_device(&h);
    return 0;
}
