/* The virtio-mmio version 2 transport (virtio 1.2 §4.2): the register window a driver sees,
 * mapped onto a transport-neutral struct virtio_dev; it knows nothing of blk or rng. */
#ifndef KILN_VIRTIO_MMIO_H
#define KILN_VIRTIO_MMIO_H

#include <stdbool.h>
#include <stdint.h>

#include "kiln/vm/bus.h"
#include "kiln/virtio/virtio_dev.h"

#define VIRTIO_MMIO_CONFIG_BASE 0x100      /* device-specific config space starts here */
#define KILN_VIRTIO_VENDOR_ID   0x4e4c494b /* "KILN" in little-endian ASCII */

/* How the transport reaches the outside world. In a VM: raise_irq writes the device's
 * irqfd; kick writes queue q's doorbell eventfd (used only when a QueueNotify write reaches
 * the bus instead of the ioeventfd, and at DRIVER_OK). Both are called with the device's lock
 * held, so they must only signal. Unit tests plug in recorders. */
struct virtio_mmio_host {
    void (*raise_irq)(void *opaque);
    void (*kick)(void *opaque, unsigned q);
    void *opaque;
};

/* The register window's own state; everything else is the device's (t->dev), under its lock. */
struct virtio_mmio {
    struct virtio_dev *dev;
    struct virtio_mmio_host host;
    uint64_t base; /* guest-physical address of the register window, for messages */
    uint32_t device_features_sel, driver_features_sel;
    uint32_t queue_sel;
    uint32_t interrupt_status; /* VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG */
    uint32_t shm_sel;
    bool bad_access_logged; /* misuse of the register window is logged once per device */
};

/* Puts dev behind a register window at base and binds it to this transport (once). */
void virtio_mmio_init(struct virtio_mmio *t, struct virtio_dev *dev,
                      const struct virtio_mmio_host *host, uint64_t base);

/* The register window's own guest-visible state (the device's is in its virtio_dev_state). */
struct virtio_mmio_state {
    uint32_t device_features_sel, driver_features_sel;
    uint32_t queue_sel;
    uint32_t interrupt_status;
    uint32_t shm_sel;
    uint32_t pad;
};
_Static_assert(sizeof(struct virtio_mmio_state) == 24, "virtio_mmio_state has no padding");

/* Lock held (virtio_dev_lock(t->dev)). Restore refuses interrupt bits that do not exist. */
void virtio_mmio_save(const struct virtio_mmio *t, struct virtio_mmio_state *out);
int virtio_mmio_restore(struct virtio_mmio *t, const struct virtio_mmio_state *in,
                        struct error *err);

/* Register window accessors for the MMIO bus (vCPU threads). */
extern const struct bus_ops virtio_mmio_bus_ops;

#endif
