/* One virtio-mmio slot of a KVM VM: a device's register window on the MMIO bus, an ioeventfd
 * doorbell per queue polled by the libuv loop, and an irqfd on the slot's GSI. */
#ifndef KILN_VIRTIO_SLOT_H
#define KILN_VIRTIO_SLOT_H

#include <stdbool.h>
#include <uv.h>

#include "kiln/vm/bus.h"
#include "kiln/virtio/virtio_mmio.h"

struct virtio_slot {
    unsigned index;
    uint64_t base; /* PLATFORM_VIRTIO_MMIO_BASE + index * slot size */
    unsigned gsi;
    int vm_fd;
    struct virtio_dev *dev; /* the device model's core, bound to transport */
    struct virtio_mmio transport;
    int irqfd;
    int doorbells[VIRTIO_MAX_QUEUES];
    bool doorbell_registered[VIRTIO_MAX_QUEUES];
    uv_poll_t polls[VIRTIO_MAX_QUEUES];
    unsigned npolls; /* polls initialised on the loop (closed by virtio_slot_detach) */
    char name[32];   /* "virtio-blk 0", for the bus */
};

/* Puts dev into slot `index`: binds it to a virtio-mmio transport, registers eventfds with KVM
 * and the register window on the MMIO bus. On failure the slot is left for
 * virtio_slot_destroy. */
int virtio_slot_create(struct virtio_slot *slot, unsigned index, int vm_fd, struct bus *mmio_bus,
                       struct virtio_dev *dev, struct error *err);

/* Starts polling the doorbells on loop (the loop thread then runs the device's queues). */
int virtio_slot_attach(struct virtio_slot *slot, uv_loop_t *loop, struct error *err);

/* Stops polling (closes the poll handles; the loop must run once more to finish closing). */
void virtio_slot_detach(struct virtio_slot *slot);

/* Unregisters the eventfds and closes them (the device is its owner's). Safe on a partly
 * created slot. */
void virtio_slot_destroy(struct virtio_slot *slot);

#endif
