/* A hostile driver for the device fuzzers: a small guest with two queues' rings at the bottom
 * of RAM and buffer areas above, descriptor and avail-entry writes and live reconfiguration
 * decoded from fuzz input, and the check that a device step left the driver's rings alone. */
#ifndef KILN_FUZZ_DRIVER_H
#define KILN_FUZZ_DRIVER_H

#include <linux/virtio_ring.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/virtio_fake.h"
#include "kiln/util/log.h"
#include "kiln/vm/guest_mem.h"

#define DRV_RAM   (256u << 10)
#define DRV_QSIZE 16
/* Queue q's rings: descriptors at DRV_DESC(q), driver area DRV_AVAIL(q), device area
 * DRV_USED(q); all below DRV_BUFFERS, where descriptors point. */
#define DRV_DESC(q)  (0x1000u + (q)*0x3000u)
#define DRV_AVAIL(q) (0x2000u + (q)*0x3000u)
#define DRV_USED(q)  (0x3000u + (q)*0x3000u)
#define DRV_BUFFERS  0x8000u
#define DRV_SPLIT    0x20000u /* a second buffer area, for device-writable buffers */

struct fuzz_driver {
    struct guest_mem mem;
    uint16_t avail_idx[2];
    uint8_t rings_before[2][0x2000]; /* each queue's descriptor table and driver area */
    const struct virtio_dev *dev;    /* the device under test, for drv_check's queue check */
    bool poked;                      /* drv_poke ran this input: see drv_check */
};

static inline uint8_t *drv_ram(struct fuzz_driver *d, uint64_t gpa)
{
    return d->mem.mapping + gpa;
}

/* Descriptor addresses land in the buffer areas, at the end of RAM or past it: never on the
 * rings, so any write there is the device's fault. */
static inline uint64_t drv_steer(uint8_t selector, uint32_t raw)
{
    switch (selector % 4) {
    case 0:
        return DRV_BUFFERS + raw % (DRV_SPLIT - DRV_BUFFERS);
    case 1:
        return DRV_SPLIT + raw % (DRV_RAM - DRV_SPLIT);
    case 2:
        return DRV_RAM - (raw % 4096);
    default: {
        uint64_t addr = (uint64_t)raw << (selector >> 4);
        return addr < DRV_BUFFERS ? addr + DRV_RAM : addr;
    }
    }
}

static inline void drv_reset(struct fuzz_driver *d)
{
    if (!d->mem.mapping && guest_mem_init(&d->mem, DRV_RAM, NULL) < 0)
        abort();
    memset(d->mem.mapping, 0, DRV_RAM);
    d->avail_idx[0] = d->avail_idx[1] = 0;
    d->poked = false;
}

/* One 8-byte driver op on queue q: [1] bits 4-7 descriptor index, bits 1-3 + 4-7 address
 * selector; [2..5] address; [6..7] length, [6] bits 0-2 flags, [7] next. */
static inline void drv_write_desc(struct fuzz_driver *d, unsigned q, const uint8_t *op)
{
    uint32_t raw;
    uint16_t len;
    memcpy(&raw, op + 2, 4);
    memcpy(&len, op + 6, 2);
    struct vring_desc desc = {.addr = drv_steer(op[1] >> 1, raw),
                              .len = len,
                              .flags = (uint16_t)(op[6] & 7),
                              .next = (uint16_t)(op[7] % (DRV_QSIZE + 2))};
    memcpy(drv_ram(d, DRV_DESC(q) + ((op[1] >> 4) % DRV_QSIZE) * sizeof(desc)), &desc,
           sizeof(desc));
}

/* Makes a head available on queue q (sometimes past the queue size, sometimes with the index
 * jumping far ahead: a broken ring). */
static inline void drv_make_available(struct fuzz_driver *d, unsigned q, const uint8_t *op)
{
    struct vring_avail *avail = (struct vring_avail *)drv_ram(d, DRV_AVAIL(q));
    avail->ring[d->avail_idx[q] % DRV_QSIZE] = (uint16_t)(op[2] % (DRV_QSIZE + 1));
    d->avail_idx[q] = (uint16_t)(d->avail_idx[q] + 1 + (op[6] == 0xff ? 40 : 0));
    avail->idx = d->avail_idx[q];
}

/* The start of every run: a quiet log the first time, fresh guest RAM, and the input's first
 * byte (the feature choice) taken off. False for an empty input. */
static inline bool drv_start(struct fuzz_driver *d, struct log *log, const uint8_t **data,
                             size_t *size, uint8_t *features)
{
    if (!log->out) {
        log->level = LOG_ERROR;
        log->out = fopen("/dev/null", "w");
    }
    if (*size < 1)
        return false;
    drv_reset(d);
    *features = (*data)[0];
    (*data)++;
    (*size)--;
    return true;
}

/* The transport's calls into the host: the fuzzers run no loop, so they go nowhere. */
static inline void drv_no_irq(void *opaque)
{
    (void)opaque;
}
static inline void drv_no_kick(void *opaque, unsigned q)
{
    (void)opaque;
    (void)q;
}
static inline struct virtio_mmio_host drv_host(void)
{
    return (struct virtio_mmio_host){.raise_irq = drv_no_irq, .kick = drv_no_kick};
}

/* The driver brings the device up: its own feature bits (device_bits) plus the ring features
 * the input's first byte picks (bit 1 INDIRECT_DESC, bit 2 EVENT_IDX), queues 0 to
 * nqueues - 1 at their DRV_* places with fresh driver areas and used rings, then DRIVER_OK.
 * Also after a driver reset (the device starts its rings from 0 again). */
static inline void drv_bring_up(struct fuzz_driver *d, struct virtio_mmio *t, uint32_t device_bits,
                                uint8_t features, unsigned nqueues)
{
    uint32_t wanted = device_bits;
    if (features & 2)
        wanted |= 1u << VIRTIO_RING_F_INDIRECT_DESC;
    if (features & 4)
        wanted |= 1u << VIRTIO_RING_F_EVENT_IDX;
    uint32_t s = fake_mmio_negotiate(t, wanted);
    for (unsigned q = 0; q < nqueues; q++) {
        fake_mmio_queue(t, q, DRV_DESC(q), DRV_AVAIL(q), DRV_USED(q));
        d->avail_idx[q] = 0;
        memset(drv_ram(d, DRV_AVAIL(q)), 0, 0x2000);
    }
    fake_mmio_write(t, VIRTIO_MMIO_STATUS, s | VIRTIO_CONFIG_S_DRIVER_OK);
}

/* The ops every device fuzzer has, by code: 0 a descriptor (on queue op[1] & 1), 1 and 2 an
 * avail entry on queue 0 and 1; a device with one queue gets them all on queue 0. False if
 * code is none of these. */
static inline bool drv_ring_op(struct fuzz_driver *d, unsigned code, unsigned nqueues,
                               const uint8_t *op)
{
    if (code == 0)
        drv_write_desc(d, nqueues > 1 ? op[1] & 1 : 0, op);
    else if (code == 1 || code == 2)
        drv_make_available(d, nqueues > 1 ? code - 1 : 0, op);
    return code <= 2;
}

/* Op bytes [0] in these ranges mean the same in every device fuzzer, whatever the device's own
 * op codes: 0xE0-0xE7 a driver store (drv_poke), 0xE8-0xEF a live reconfiguration
 * (drv_reconfigure). Chosen so that the older regression seeds keep their meaning. */
static inline bool drv_is_poke(const uint8_t *op)
{
    return op[0] >= 0xE0 && op[0] <= 0xE7;
}
static inline bool drv_is_reconfigure(const uint8_t *op)
{
    return op[0] >= 0xE8 && op[0] <= 0xEF;
}

/* The driver stores op[4..7]: with op[3] bit 7 set into descriptor op[2] of queue op[3] bit 6,
 * its length (op[1] bit 0 clear) or its flags and next; else into the buffer areas at
 * op[1..3]. Request headers, exact lengths and flags, indirect tables: what the ring ops
 * cannot write. Never a descriptor's address or the rings themselves. */
static inline void drv_poke(struct fuzz_driver *d, const uint8_t *op)
{
    uint32_t addr;
    if (op[3] & 0x80) {
        addr = DRV_DESC((op[3] >> 6) & 1) + op[2] * 16u + 8 + (op[1] & 1) * 4;
    } else {
        uint32_t at = (uint32_t)op[1] | (uint32_t)op[2] << 8 | (uint32_t)op[3] << 16;
        addr = DRV_BUFFERS + at % (DRV_RAM - DRV_BUFFERS - 3);
    }
    memcpy(drv_ram(d, addr), op + 4, 4);
    /* An indirect table stored here can point anywhere, the driver's own rings included. */
    d->poked = true;
}

/* QueueNum values a driver might write: powers of two up to 256, anything below 256 and
 * values above 65535 (which the transport takes as 0). Never a size from 512 to 65535, where
 * queue 0's used ring would reach queue 1's descriptors and drv_check would blame the device
 * for a write the driver asked for. */
static inline uint32_t drv_queue_num(const uint8_t *op)
{
    switch (op[2] % 4) {
    case 0:
        return 1u << (op[3] % 9);
    case 1:
        return op[3];
    case 2:
        return 0x10000u | op[3];
    default:
        return DRV_QSIZE;
    }
}

/* A ring address: one of the two queues' own areas, or anywhere drv_steer points (never on
 * the driver's rings). Used rings only go where the device may write. */
static inline uint32_t drv_ring_address(const uint8_t *op, uint64_t own[2])
{
    uint32_t raw;
    memcpy(&raw, op + 4, 4);
    if (op[3] & 1)
        return (uint32_t)own[(op[3] >> 1) & 1];
    uint64_t addr = drv_steer(op[3] >> 1, raw);
    return addr <= UINT32_MAX ? (uint32_t)addr : 0xfffff000u; /* cut to 32 bits: past RAM */
}

/* One register write a hostile driver makes while the device runs: the queue set-up registers
 * on a live queue, QueueReady=0 (and =1 again), new features after FEATURES_OK or DRIVER_OK,
 * any status value, interrupt acks. Op [1] % 12 picks the register, [2..7] the value. */
static inline void drv_reconfigure(struct virtio_mmio *t, const uint8_t *op)
{
    uint64_t desc[2] = {DRV_DESC(0), DRV_DESC(1)}, avail[2] = {DRV_AVAIL(0), DRV_AVAIL(1)};
    uint64_t used[2] = {DRV_USED(0), DRV_USED(1)};
    uint32_t raw;
    memcpy(&raw, op + 4, 4);
    switch (op[1] % 12) {
    case 0:
        fake_mmio_write(t, VIRTIO_MMIO_QUEUE_SEL, op[2] % 3); /* 2: no such queue */
        break;
    case 1:
        fake_mmio_write(t, VIRTIO_MMIO_QUEUE_READY, op[2] & 1);
        break;
    case 2:
        fake_mmio_write(t, VIRTIO_MMIO_QUEUE_NUM, drv_queue_num(op));
        break;
    case 3:
        fake_mmio_write(t, VIRTIO_MMIO_QUEUE_DESC_LOW, drv_ring_address(op, desc));
        break;
    case 4:
        fake_mmio_write(t, VIRTIO_MMIO_QUEUE_AVAIL_LOW, drv_ring_address(op, avail));
        break;
    case 5:
        fake_mmio_write(t, VIRTIO_MMIO_QUEUE_USED_LOW, drv_ring_address(op, used));
        break;
    case 6: {
        static const uint32_t high[3] = {VIRTIO_MMIO_QUEUE_DESC_HIGH, VIRTIO_MMIO_QUEUE_AVAIL_HIGH,
                                         VIRTIO_MMIO_QUEUE_USED_HIGH};
        fake_mmio_write(t, high[op[2] % 3], op[3] & 1 ? raw : 0);
        break;
    }
    case 7:
        fake_mmio_write(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, op[2] % 3);
        break;
    case 8:
        fake_mmio_write(t, VIRTIO_MMIO_DRIVER_FEATURES, raw);
        break;
    case 9:
        fake_mmio_write(t, VIRTIO_MMIO_STATUS, op[2]);
        break;
    case 10:
        fake_mmio_write(t, VIRTIO_MMIO_INTERRUPT_ACK, raw);
        break;
    default: {
        /* A whole live move: ready off, new size and rings (maybe the other queue's), on. */
        unsigned q = op[2] & 1;
        fake_mmio_write(t, VIRTIO_MMIO_QUEUE_READY, 0);
        fake_mmio_write(t, VIRTIO_MMIO_QUEUE_NUM, drv_queue_num(op));
        fake_mmio_write(t, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc[q]);
        fake_mmio_write(t, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)avail[q]);
        fake_mmio_write(t, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)used[q]);
        fake_mmio_write(t, VIRTIO_MMIO_QUEUE_READY, 1);
        break;
    }
    }
}

static inline void drv_snapshot(struct fuzz_driver *d)
{
    for (unsigned q = 0; q < 2; q++)
        memcpy(d->rings_before[q], drv_ram(d, DRV_DESC(q)), sizeof(d->rings_before[q]));
}

/* §2.7.5.1: the device writes only the used ring; descriptors and the driver area stay
 * (unless the driver stored an indirect table that points there: then it asked for it). And
 * a ready queue's used index never runs ahead of the chains taken from it since it was
 * enabled: a completion from before a QueueReady=0 or a reset must not land in the queue the
 * driver set up afterwards (the guest would get back a buffer it never gave that queue).
 * In-flight work may exceed the queue size (a hostile driver offers a head twice), never
 * 0x8000, which is the used index ahead. */
static inline void drv_check(struct fuzz_driver *d)
{
    for (unsigned q = 0; q < 2 && !d->poked; q++)
        if (memcmp(d->rings_before[q], drv_ram(d, DRV_DESC(q)), sizeof(d->rings_before[q])))
            abort();
    for (unsigned q = 0; d->dev && q < d->dev->info.num_queues; q++) {
        const struct virtqueue *vq = &d->dev->queues[q];
        if (vq->ready && (uint16_t)(vq->last_avail - vq->used_idx) >= 0x8000)
            abort();
    }
}

/* For each device fuzzer's loop: a driver store or a reconfiguration runs (the latter is a
 * device step: the device may pop or complete on QueueReady or a status write) and says so. */
static inline bool drv_live_op(struct fuzz_driver *d, struct virtio_mmio *t, const uint8_t *op)
{
    if (drv_is_poke(op)) {
        drv_poke(d, op);
        return true;
    }
    if (!drv_is_reconfigure(op))
        return false;
    drv_snapshot(d);
    drv_reconfigure(t, op);
    drv_check(d);
    return true;
}

#endif
