/* The VM's device table: every device, platform or virtio, is one entry naming its kind (an ops
 * table) and its place, so building, attaching, stats, teardown and snapshots walk one list. */
#ifndef KILN_VM_DEVICE_H
#define KILN_VM_DEVICE_H

#include <stddef.h>

#include "kiln/util/error.h"
#include "kiln/util/log.h"

struct vm;
struct virtio_dev;

/* What kiln knows how to do with one kind of device. Ops that a kind does not need are NULL. */
struct vm_device_kind {
    const char *name; /* "virtio-blk", "serial"... */
    /* Builds instance `index` of this kind from the VM's config (disk `index`, ...), and
     * registers its platform ports; virtio devices get their slot from the table. */
    int (*create)(struct vm *vm, unsigned index, void **dev, struct error *err);
    /* virtio devices: the core to put in a virtio-mmio slot. */
    struct virtio_dev *(*virtio)(void *dev);
    /* Starts its host side on the VM's loop (consoles, TAP polling) / stops it. */
    int (*attach)(struct vm *vm, void *dev, struct error *err);
    void (*detach)(struct vm *vm, void *dev);
    /* Work still running off the loop (block I/O on the thread pool): teardown and snapshots
     * run the loop until it is 0. */
    unsigned (*in_flight)(void *dev);
    void (*destroy)(void *dev);
    /* Guest-visible state (docs/architecture.md, "State for snapshots"): state_size bytes. */
    size_t state_size;
    int (*save)(void *dev, void *state, struct error *err);
    int (*restore)(void *dev, const void *state, struct error *err);
    /* Debug lines at the end of a run. */
    void (*stats)(void *dev, const char *name, const struct log *log);
};

/* One device of the VM. */
struct vm_device {
    const struct vm_device_kind *kind;
    void *dev;
    int slot;      /* virtio-mmio slot, -1 for a platform device */
    char name[32]; /* "virtio-blk 0", for messages and snapshot sections */
};

/* vm_devices.c, in the VM's life order. */
int vm_devices_create(struct vm *vm, struct error *err);
int vm_devices_attach(struct vm *vm, struct error *err);
void vm_devices_detach(struct vm *vm);
void vm_devices_log_stats(const struct vm *vm);
void vm_devices_destroy(struct vm *vm);

#endif
