/* libFuzzer target for the virtio-net device as a hostile guest drives it: the input is a
 * script of driver actions (descriptors, avail entries, doorbells, feature choice) and host
 * frames on the "TAP" (a SOCK_SEQPACKET socketpair). Besides the sanitizers, the device must
 * never write the descriptor tables or avail rings, which only the driver owns. */
#include <linux/virtio_net.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../unit/virtio_fake.h"
#include "kiln/devices/virtio_net.h"

/* A small guest: rings at the bottom, then transmit buffers, then receive buffers. */
#define NET_RAM  (256u << 10)
#define RX_DESC  0x1000u
#define RX_AVAIL 0x2000u
#define RX_USED  0x3000u
#define TX_DESC  0x4000u
#define TX_AVAIL 0x5000u
#define TX_USED  0x6000u
#define TX_AREA  0x8000u
#define RX_AREA  0x20000u
#define QSIZE    16
#define MAX_OPS  64

struct harness {
    struct guest_mem mem;
    struct log log;
    uv_loop_t loop;
    struct virtio_net *net;
    struct virtio_mmio t;
    int host;
    uint16_t avail_idx[2];
};

static uint8_t rings_before[TX_AVAIL + 0x1000 - RX_DESC];

static void no_irq(void *opaque)
{
}
static void no_kick(void *opaque, unsigned q)
{
}

static uint8_t *ram(struct harness *h, uint64_t gpa)
{
    return h->mem.mapping + gpa;
}

/* Descriptor addresses land in the buffer areas, at the end of RAM or past it: never on the
 * rings, so any write there is the device's fault. */
static uint64_t steer(uint8_t selector, uint32_t raw)
{
    switch (selector % 4) {
    case 0:
        return TX_AREA + raw % (RX_AREA - TX_AREA);
    case 1:
        return RX_AREA + raw % (NET_RAM - RX_AREA);
    case 2:
        return NET_RAM - (raw % 4096);
    default: {
        uint64_t addr = (uint64_t)raw << (selector >> 4);
        return addr < TX_AREA ? addr + NET_RAM : addr;
    }
    }
}

static bool open_device(struct harness *h, uint8_t features)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv) < 0)
        return false;
    h->host = sv[1];
    uv_loop_init(&h->loop);
    const uint8_t mac[6] = {2, 0, 0, 0, 0, 1};
    if (virtio_net_create(&h->net, sv[0], mac, &h->loop, &h->log, NULL) < 0)
        abort();
    struct virtio_device_info info;
    virtio_net_device_info(h->net, &info);
    struct virtio_mmio_host host = {.raise_irq = no_irq, .kick = no_kick};
    if (virtio_mmio_init(&h->t, &info, &host, &h->mem, &h->log, 0xd0000000, NULL) < 0)
        abort();
    virtio_net_bind(h->net, &h->t);
    if (virtio_net_attach(h->net, NULL) < 0)
        abort();
    uint32_t wanted = 0;
    if (features & 1)
        wanted |= 1u << VIRTIO_NET_F_MRG_RXBUF;
    if (features & 2)
        wanted |= 1u << VIRTIO_RING_F_INDIRECT_DESC;
    if (features & 4)
        wanted |= 1u << VIRTIO_RING_F_EVENT_IDX;
    if (features & 8)
        wanted |= (1u << VIRTIO_NET_F_GUEST_CSUM) | (1u << VIRTIO_NET_F_CSUM);
    uint32_t s = fake_mmio_negotiate(&h->t, wanted);
    fake_mmio_queue(&h->t, VIRTIO_NET_QUEUE_RX, RX_DESC, RX_AVAIL, RX_USED);
    fake_mmio_queue(&h->t, VIRTIO_NET_QUEUE_TX, TX_DESC, TX_AVAIL, TX_USED);
    fake_mmio_write(&h->t, VIRTIO_MMIO_STATUS, s | VIRTIO_CONFIG_S_DRIVER_OK);
    return true;
}

static void close_device(struct harness *h)
{
    virtio_net_detach(h->net);
    uv_run(&h->loop, UV_RUN_NOWAIT);
    virtio_net_destroy(h->net);
    virtio_mmio_destroy(&h->t);
    uv_loop_close(&h->loop);
    close(h->host);
}

/* Runs one device step and checks the driver-owned rings came through untouched. */
static void device_step(struct harness *h, uint8_t op)
{
    memcpy(rings_before, ram(h, RX_DESC), sizeof(rings_before));
    switch (op) {
    case 0:
        virtio_mmio_handle_notify(&h->t, VIRTIO_NET_QUEUE_RX);
        break;
    case 1:
        virtio_mmio_handle_notify(&h->t, VIRTIO_NET_QUEUE_TX);
        break;
    default:
        uv_run(&h->loop, UV_RUN_NOWAIT);
        break;
    }
    /* The used rings sit between the checked areas; compare around them. */
    const uint8_t *now = ram(h, RX_DESC);
    if (memcmp(rings_before, now, RX_USED - RX_DESC) != 0 ||
        memcmp(rings_before + (TX_DESC - RX_DESC), now + (TX_DESC - RX_DESC), TX_USED - TX_DESC) !=
            0)
        abort();
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

/* Input: [0] feature bits; then 8-byte ops:
 *   [0] op % 8: 0 descriptor, 1 RX avail, 2 TX avail, 3 host frame, 4-6 device step
 *       (RX doorbell, TX doorbell, loop), 7 host drains what the device sent
 *   [1] queue (bit 0), descriptor index (bits 4-7), address selector
 *   [2..5] address (steered), [6..7] length; flags and next come from [1] and [6]. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct harness h;
    if (!h.mem.mapping) {
        if (guest_mem_init(&h.mem, NET_RAM, NULL) < 0)
            abort();
        h.log.level = LOG_ERROR;
        h.log.out = fopen("/dev/null", "w");
    }
    if (size < 1)
        return 0;
    memset(h.mem.mapping, 0, NET_RAM);
    h.avail_idx[0] = h.avail_idx[1] = 0;
    if (!open_device(&h, data[0]))
        return 0;
    data++;
    size--;
    for (unsigned n = 0; size >= 8 && n < MAX_OPS; n++, data += 8, size -= 8) {
        unsigned q = data[1] & 1, index = (data[1] >> 4) % QSIZE;
        uint32_t raw;
        memcpy(&raw, data + 2, 4);
        uint16_t len;
        memcpy(&len, data + 6, 2);
        switch (data[0] % 8) {
        case 0: {
            struct vring_desc d = {.addr = steer(data[1] >> 1, raw),
                                   .len = len,
                                   .flags = (uint16_t)(data[6] & 7),
                                   .next = (uint16_t)(data[7] % (QSIZE + 2))};
            memcpy(ram(&h, (q ? TX_DESC : RX_DESC) + index * sizeof(d)), &d, sizeof(d));
            break;
        }
        case 1:
        case 2: {
            unsigned which = data[0] % 8 == 1 ? 0 : 1;
            struct vring_avail *avail = (void *)ram(&h, which ? TX_AVAIL : RX_AVAIL);
            avail->ring[h.avail_idx[which] % QSIZE] = (uint16_t)(raw % (QSIZE + 1));
            h.avail_idx[which] = (uint16_t)(h.avail_idx[which] + 1 + (data[6] == 0xff ? 40 : 0));
            avail->idx = h.avail_idx[which];
            break;
        }
        case 3:
            send_frame(&h, len, data[2]);
            break;
        case 7:
            drain_host(&h);
            break;
        default:
            device_step(&h, (uint8_t)(data[0] % 8 - 4));
            break;
        }
    }
    device_step(&h, 0);
    device_step(&h, 1);
    close_device(&h);
    return 0;
}
