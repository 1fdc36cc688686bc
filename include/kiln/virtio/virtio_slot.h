/* One virtio-mmio device plugged into a KVM VM: its register window on the MMIO bus, an
 * ioeventfd doorbell per queue polled by the libuv loop, and an irqfd on its GSI. */
#ifndef KILN_VIRTIO_SLOT_H
#define KILN_VIRTIO_SLOT_H

#include <stdbool.h>
#include <uv.h>

#include "kiln/bus.h"
#include "kiln/virtio/virtio_mmio.h"

struct virtio_slot {
    unsigned index;
    uint64_t base; /* PLATFORM_VIRTIO_MMIO_BASE + index * slot size */
    unsigned gsi;
    int vm_fd;
    struct virtio_mmio transport;
    bool transport_ready;
    int irqfd;
    int doorbells[VIRTIO_MMIO_MAX_QUEUES];
    bool doorbell_registered[VIRTIO_MMIO_MAX_QUEUES];
    uv_poll_t polls[VIRTIO_MMIO_MAX_QUEUES];
    unsigned npolls; /* polls initialised on the loop (closed by virtio_slot_detach) */
    char name[32];   /* "virtio-blk 0", for the bus */
};

/* Puts the device described by info into slot `index`: transport, eventfds registered with
 * KVM, register window on the MMIO bus. On failure the slot is left for virtio_slot_destroy. */
int virtio_slot_create(struct virtio_slot *slot, unsigned index, int vm_fd, struct bus *mmio_bus,
                       const struct virtio_device_info *info, const struct guest_mem *mem,
                       const struct log *log, struct error *err);

/* Starts polling the doorbells on loop (the loop thread then runs the device's queues). */
int virtio_slot_attach(struct virtio_slot *slot, uv_loop_t *loop, struct error *err);

/* Stops polling (closes the poll handles; the loop must run once more to finish closing). */
void virtio_slot_detach(struct virtio_slot *slot);

/* Unregisters the eventfds and closes them. Safe on a partly created slot. */
void virtio_slot_destroy(struct virtio_slot *slot);

#endif
