/* A small polling virtio-mmio (version 2) driver for test guests: finds devices listed as
 * virtio_mmio.device= on the command line, negotiates features, runs one split queue. */
#ifndef KILN_GUEST_VIRTIO_H
#define KILN_GUEST_VIRTIO_H

#include <stdint.h>

#include "guest.h"

#define VQ_SIZE 16

struct vq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

#define VQ_DESC_NEXT  1
#define VQ_DESC_WRITE 2

/* One queue's rings, laid out as the spec wants them aligned. */
struct virtq {
    struct vq_desc desc[VQ_SIZE] __attribute__((aligned(16)));
    struct {
        uint16_t flags, idx, ring[VQ_SIZE], used_event;
    } avail __attribute__((aligned(2)));
    struct {
        uint16_t flags, idx;
        struct {
            uint32_t id, len;
        } ring[VQ_SIZE];
        uint16_t avail_event;
    } used __attribute__((aligned(4)));
    uint16_t size;
    uint16_t last_used;
    uint16_t index; /* which queue of the device */
};

struct virtio_dev {
    uint64_t base;
    uint32_t irq;
    uint32_t device_id;
    uint64_t features; /* negotiated */
};

/* Finds the index-th (0-based) device with device_id among the command line's
 * virtio_mmio.device= entries; 0 on success, -1 if there is none. Prints what it probes. */
int virtio_find(uint32_t device_id, unsigned index, struct virtio_dev *dev);

/* Reset, ACKNOWLEDGE, DRIVER, features (wanted & offered, plus VERSION_1), FEATURES_OK and
 * its read-back; then queue 0 with vq. 0 on success, -1 with a message printed. */
int virtio_setup(struct virtio_dev *dev, uint64_t wanted, struct virtq *vq);
/* virtio_setup without the queue: reset, feature negotiation, FEATURES_OK. 0 or -1. */
int virtio_negotiate(struct virtio_dev *dev, uint64_t wanted);
/* Programs queue index with the given size and ring addresses as they are (no checks, no
 * clearing: a hostile guest chooses them) and sets QueueReady. */
void virtio_setup_queue_at(struct virtio_dev *dev, unsigned index, uint16_t size, uint64_t desc,
                           uint64_t avail, uint64_t used);
/* The device status register (0x40 is DEVICE_NEEDS_RESET); writing 0 resets the device. */
uint32_t virtio_status(struct virtio_dev *dev);
void virtio_reset(struct virtio_dev *dev);
/* Sets up another queue (call between virtio_setup and virtio_driver_ok). 0 or -1. */
int virtio_setup_queue(struct virtio_dev *dev, unsigned index, struct virtq *vq);
void virtio_driver_ok(struct virtio_dev *dev);

/* Makes the chain at head available and rings the doorbell, without waiting. */
void virtio_submit(struct virtio_dev *dev, struct virtq *vq, uint16_t head);
/* The next used entry if there is one: 1 with *id and *len set, else 0. */
int virtio_poll_used(struct virtio_dev *dev, struct virtq *vq, uint32_t *id, uint32_t *len);

uint32_t virtio_config_read32(struct virtio_dev *dev, uint32_t offset);
uint8_t virtio_config_read8(struct virtio_dev *dev, uint32_t offset);

/* Makes the chain starting at descriptor head available, rings the doorbell and polls the
 * used ring; returns the used length, or -1 after a timeout (message printed). */
int64_t virtio_submit_and_wait(struct virtio_dev *dev, struct virtq *vq, uint16_t head);

#endif
