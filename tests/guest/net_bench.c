/* net-bench.elf: virtio-net TX/RX throughput from CPL3 for bench/net; phases tx64, tx1514, rx64,
 * rx1514, each "bench: P start", a 'g' from the host, the loop, "bench: P done N doorbells D". */
#include "runtime/guest.h"
#include "runtime/user.h"
#include "runtime/virtio.h"

#define HDR_SIZE         12 /* struct virtio_net_hdr_v1 */
#define RX_BUF_SIZE      2048
#define ETH_BENCH_DATA   0x88b5 /* IEEE local experimental ethertypes */
#define ETH_BENCH_END    0x88b6
#define USED_NO_NOTIFY   1
#define AVAIL_NO_INTR    1
#define REG_QUEUE_NOTIFY 0x050
#define TIMEOUT_TICKS    100000000000ULL /* tens of seconds at a few GHz: a lost host */

#define barrier() __asm__ volatile("" ::: "memory")
/* A full fence (the avail index store before the used.flags load): without it the driver may
 * read a stale NO_NOTIFY while the device re-enables notifications, and both wait forever. */
#define full_fence() __asm__ volatile("lock orl $0, (%%rsp)" ::: "memory", "cc")

static struct virtq rxq, txq;
static struct virtio_dev dev;
static uint8_t rx_buf[VQ_SIZE][RX_BUF_SIZE] __attribute__((aligned(64)));
static uint8_t tx_buf[HDR_SIZE + 1514] __attribute__((aligned(64)));
static uint32_t doorbells; /* QueueNotify writes in the current phase */

struct phase {
    const char *name;
    uint8_t id;       /* byte 14 of the host's frames: which RX phase they belong to */
    uint32_t size;    /* Ethernet frame bytes (no FCS), TX only */
    uint32_t count;   /* TX: frames to send; RX: data frames received */
    uint32_t timeout; /* the loop gave up */
};

static uint16_t used_idx(struct virtq *q)
{
    return *(volatile uint16_t *)&q->used.idx;
}

/* Publishes the avail entries written so far and rings the doorbell unless the device said it
 * does not need it. One doorbell per batch, not per frame. */
static void publish(struct virtq *q, uint16_t new_idx)
{
    barrier();
    *(volatile uint16_t *)&q->avail.idx = new_idx;
    full_fence();
    if (!(*(volatile uint16_t *)&q->used.flags & USED_NO_NOTIFY)) {
        mmio_write32(dev.base + REG_QUEUE_NOTIFY, q->index);
        doorbells++;
    }
}

/* CPL3. Every descriptor points at the same frame, so descriptor id = avail slot; with at
 * most size frames in flight the ids in flight are distinct. */
static void tx_loop(void *arg)
{
    struct phase *p = arg;
    uint16_t size = txq.size, avail = txq.avail.idx;
    uint32_t sent = 0, done = 0;
    for (uint16_t i = 0; i < size; i++)
        txq.desc[i] = (struct vq_desc){(uint64_t)(uintptr_t)tx_buf, HDR_SIZE + p->size, 0, 0};
    uint64_t last_progress = rdtsc();
    while (done < p->count) {
        uint16_t used = used_idx(&txq);
        if (used != txq.last_used) {
            done += (uint16_t)(used - txq.last_used);
            txq.last_used = used;
            last_progress = rdtsc();
        }
        uint16_t start = avail;
        while ((uint16_t)(avail - txq.last_used) < size && sent < p->count) {
            txq.avail.ring[avail % size] = avail % size;
            avail++;
            sent++;
        }
        if (avail != start)
            publish(&txq, avail);
        else if (rdtsc() - last_progress > TIMEOUT_TICKS) {
            p->timeout = 1;
            break;
        }
    }
    p->count = done;
}

static void rx_post(uint16_t id, uint16_t *avail)
{
    rxq.avail.ring[*avail % rxq.size] = id;
    (*avail)++;
}

/* CPL3: counts this phase's data frames until the host's end frame for this phase. Frames of
 * other phases (late end frames) and anything else are given back uncounted. */
static void rx_loop(void *arg)
{
    struct phase *p = arg;
    uint16_t avail = rxq.avail.idx;
    uint32_t frames = 0;
    uint64_t last_progress = rdtsc();
    for (;;) {
        uint16_t used = used_idx(&rxq), start = avail;
        int end = 0;
        while (rxq.last_used != used) {
            uint32_t id = rxq.used.ring[rxq.last_used % rxq.size].id;
            uint32_t len = rxq.used.ring[rxq.last_used % rxq.size].len;
            rxq.last_used++;
            const uint8_t *f = rx_buf[id % VQ_SIZE] + HDR_SIZE;
            if (len >= HDR_SIZE + 15 && f[12] == (ETH_BENCH_DATA >> 8) && f[14] == p->id) {
                if (f[13] == (ETH_BENCH_DATA & 0xff))
                    frames++;
                else if (f[13] == (ETH_BENCH_END & 0xff))
                    end = 1;
            }
            rx_post((uint16_t)(id % VQ_SIZE), &avail);
        }
        if (avail != start) {
            publish(&rxq, avail);
            last_progress = rdtsc();
        }
        if (end)
            break;
        if (rdtsc() - last_progress > TIMEOUT_TICKS) {
            p->timeout = 1;
            break;
        }
    }
    p->count = frames;
}

static int run_phase(struct phase *p, void (*loop)(void *))
{
    printf("bench: %s start\n", p->name);
    while (serial_getc() != 'g') /* the host has read its counters */
        ;
    doorbells = 0;
    user_run(loop, p);
    printf("bench: %s done %u doorbells %u%s\n", p->name, p->count, doorbells,
           p->timeout ? " (timed out)" : "");
    return p->timeout ? GUEST_EXIT_FAIL : 0;
}

int guest_main(void)
{
    uint32_t n = 100000;
    cmdline_get_u32("bench.n", &n);
    if (virtio_find(1, 0, &dev) < 0 || virtio_setup(&dev, 0, &rxq) < 0 ||
        virtio_setup_queue(&dev, 1, &txq) < 0) {
        puts("bench: FAIL: no usable virtio-net device");
        return GUEST_EXIT_FAIL;
    }
    virtio_driver_ok(&dev);
    rxq.avail.flags = AVAIL_NO_INTR; /* the kit polls; interrupts would only cost the host */
    txq.avail.flags = AVAIL_NO_INTR;
    /* Broadcast to the host, from a locally administered address, with a bench ethertype
     * the host's stack drops at once; the rest is zero. */
    uint8_t *f = tx_buf + HDR_SIZE;
    memset(f, 0xff, 6);
    f[6] = 0x02;
    f[11] = 0x01;
    f[12] = ETH_BENCH_DATA >> 8;
    f[13] = ETH_BENCH_DATA & 0xff;

    struct phase tx64 = {"tx64", 0, 64, n, 0}, tx1514 = {"tx1514", 0, 1514, n, 0};
    struct phase rx64 = {"rx64", 1, 0, 0, 0}, rx1514 = {"rx1514", 2, 0, 0, 0};
    int r = run_phase(&tx64, tx_loop);
    r |= run_phase(&tx1514, tx_loop);
    for (uint16_t i = 0; i < rxq.size; i++)
        rxq.desc[i] =
            (struct vq_desc){(uint64_t)(uintptr_t)rx_buf[i], RX_BUF_SIZE, VQ_DESC_WRITE, 0};
    uint16_t avail = 0;
    for (uint16_t i = 0; i < rxq.size; i++)
        rx_post(i, &avail);
    publish(&rxq, avail);
    r |= run_phase(&rx64, rx_loop);
    r |= run_phase(&rx1514, rx_loop);
    puts(r ? "bench: FAIL: a phase timed out" : "bench: finished");
    return r ? GUEST_EXIT_FAIL : GUEST_EXIT_PASS;
}
