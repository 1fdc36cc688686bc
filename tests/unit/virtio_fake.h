/* Test helpers shared by the virtio unit tests: a small guest RAM with one split queue laid out
 * in it, and functions that write descriptors and avail entries the way a driver would. */
#ifndef KILN_TEST_VIRTIO_FAKE_H
#define KILN_TEST_VIRTIO_FAKE_H

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>
#include <string.h>

#include "kiln/vm/guest_mem.h"
#include "kiln/virtio/virtio_mmio.h"
#include "kiln/virtio/virtqueue.h"

#define FAKE_RAM      (16ULL << 20)
#define FAKE_DESC     0x10000ULL
#define FAKE_AVAIL    0x20000ULL
#define FAKE_USED     0x30000ULL
#define FAKE_INDIRECT 0x40000ULL
#define FAKE_BUF      0x100000ULL /* data buffers from here */

struct fake_queue {
    struct guest_mem mem;
    struct virtqueue vq;
    uint16_t avail_idx;
};

static inline void *fake_ptr(struct fake_queue *f, uint64_t gpa)
{
    return guest_mem_ptr(&f->mem, gpa, 1);
}

static inline void fake_desc_at(struct fake_queue *f, uint64_t table, unsigned i, uint64_t addr,
                                uint32_t len, uint16_t flags, uint16_t next)
{
    struct vring_desc d = {.addr = addr, .len = len, .flags = flags, .next = next};
    memcpy((uint8_t *)fake_ptr(f, table) + i * sizeof(d), &d, sizeof(d));
}

static inline void fake_desc(struct fake_queue *f, unsigned i, uint64_t addr, uint32_t len,
                             uint16_t flags, uint16_t next)
{
    fake_desc_at(f, FAKE_DESC, i, addr, len, flags, next);
}

/* Makes head available and bumps avail->idx. */
static inline void fake_avail(struct fake_queue *f, uint16_t head)
{
    struct vring_avail *avail = fake_ptr(f, FAKE_AVAIL);
    avail->ring[f->avail_idx % f->vq.size] = head;
    f->avail_idx++;
    avail->idx = f->avail_idx;
}

static inline struct vring_used *fake_used(struct fake_queue *f)
{
    return fake_ptr(f, FAKE_USED);
}

static inline struct vring_avail *fake_avail_ring(struct fake_queue *f)
{
    return fake_ptr(f, FAKE_AVAIL);
}

/* Guest RAM plus a queue of `size` entries at the FAKE_* addresses, enabled. */
static inline int fake_queue_init(struct fake_queue *f, uint16_t size, bool event_idx,
                                  bool indirect)
{
    memset(f, 0, sizeof(*f));
    if (guest_mem_init(&f->mem, FAKE_RAM, NULL) < 0)
        return -1;
    virtqueue_reset(&f->vq, &f->mem, VIRTQ_MAX_SIZE);
    f->vq.size = size;
    f->vq.desc_gpa = FAKE_DESC;
    f->vq.avail_gpa = FAKE_AVAIL;
    f->vq.used_gpa = FAKE_USED;
    const char *why = NULL;
    return virtqueue_enable(&f->vq, event_idx, indirect, &why);
}

static inline void fake_queue_destroy(struct fake_queue *f)
{
    guest_mem_destroy(&f->mem);
}

/* A driver's side of a transport, through the bus accessors as a guest would use them. */
static inline void fake_mmio_write(struct virtio_mmio *t, uint64_t offset, uint32_t v)
{
    virtio_mmio_bus_ops.write(t, offset, (const uint8_t *)&v, 4);
}

/* Queue q with 16 entries at the given rings, then QueueReady. */
static inline void fake_mmio_queue(struct virtio_mmio *t, unsigned q, uint64_t desc, uint64_t avail,
                                   uint64_t used)
{
    fake_mmio_write(t, VIRTIO_MMIO_QUEUE_SEL, q);
    fake_mmio_write(t, VIRTIO_MMIO_QUEUE_NUM, 16);
    fake_mmio_write(t, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
    fake_mmio_write(t, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)avail);
    fake_mmio_write(t, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)used);
    fake_mmio_write(t, VIRTIO_MMIO_QUEUE_READY, 1);
}

/* ACKNOWLEDGE, DRIVER, features_low + VERSION_1, FEATURES_OK; returns the status written. */
static inline uint32_t fake_mmio_negotiate(struct virtio_mmio *t, uint32_t features_low)
{
    uint32_t s = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;
    fake_mmio_write(t, VIRTIO_MMIO_STATUS, s);
    fake_mmio_write(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    fake_mmio_write(t, VIRTIO_MMIO_DRIVER_FEATURES, features_low);
    fake_mmio_write(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    fake_mmio_write(t, VIRTIO_MMIO_DRIVER_FEATURES, 1u << (VIRTIO_F_VERSION_1 - 32));
    s |= VIRTIO_CONFIG_S_FEATURES_OK;
    fake_mmio_write(t, VIRTIO_MMIO_STATUS, s);
    return s;
}

#endif
