/* The VM's device table: every device, platform or virtio, is one entry naming its kind (an ops
 * table) and its place, so building, attaching, counters, teardown and snapshots walk one list. */
#ifndef KILN_VM_DEVICE_H
#define KILN_VM_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/util/error.h"
#include "kiln/util/log.h"
#include "kiln/util/token_bucket.h"

struct vm;
struct virtio_dev;
struct virtio_balloon;

/* One statistic of a device: its name ("read_bytes", static) and its value so far. */
struct vm_counter {
    const char *name;
    uint64_t value;
};
/* The most counters one device (or one of its virtio queues) reports. */
#define VM_DEVICE_MAX_COUNTERS 16
/* The most rate limits one device has (virtio-net: receive and transmit). */
#define VM_DEVICE_MAX_LIMITS 2

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
    /* Its host side's data on stable storage (a disk image's fdatasync), before a snapshot.
     * Called from the snapshot writer's thread while the vCPUs are paused and I/O drained. */
    int (*flush)(void *dev, struct error *err);
    /* Live migration: lets go of (release) or takes again the host resources the VM's other
     * copy needs, such as a disk image's lock. Loop thread, vCPUs paused, no I/O in flight. */
    int (*hand_over)(void *dev, bool release, struct error *err);
    void (*destroy)(void *dev);
    /* Guest-visible state (docs/architecture.md, "State for snapshots"): state_size bytes. */
    size_t state_size;
    int (*save)(void *dev, void *state, struct error *err);
    int (*restore)(void *dev, const void *state, struct error *err);
    /* The device's own counters (not its queues'), always the same names in the same order:
     * fills up to max, returns how many. Safe on the loop thread while the VM runs. NULL:
     * none. */
    size_t (*counters)(void *dev, struct vm_counter *out, size_t max);
    /* Its rate limits as they are now (docs/resources.md): fills limits[0..n) (virtio-net:
     * receive, transmit) and returns n; set_limits takes as many, on the loop thread, and
     * fails with -EINVAL (err set) for a bad one. get_limits takes the device's lock, so any
     * thread may call it. NULL: the device has none. */
    unsigned (*get_limits)(void *dev, struct rate_limit_config *limits);
    int (*set_limits)(void *dev, const struct rate_limit_config *limits, struct error *err);
};

/* One device of the VM. */
struct vm_device {
    const struct vm_device_kind *kind;
    void *dev;
    int slot;      /* virtio-mmio slot, -1 for a platform device */
    char name[32]; /* "virtio-blk 0", for messages and snapshot sections */
};

/* The device's counters (kind->counters; 0 if it has none). Read while the VM runs, from the
 * loop thread or any other: vCPU threads and the I/O pool keep counting meanwhile. */
size_t vm_device_counters(const struct vm_device *d, struct vm_counter *out, size_t max);
/* How many virtio queues the device has (0 for a platform device), and queue q's counters:
 * notifications, chains, used, interrupts, bad_chains. Same rules as vm_device_counters. */
unsigned vm_device_queue_count(const struct vm_device *d);
size_t vm_device_queue_counters(const struct vm_device *d, unsigned q, struct vm_counter *out,
                                size_t max);

/* The index-th device of the kind named kind_name ("virtio-blk", in config order), or NULL. */
struct vm_device *vm_devices_find(struct vm *vm, const char *kind_name, unsigned index);
/* The VM's balloon, or NULL without one. */
struct virtio_balloon *vm_devices_balloon(const struct vm *vm);

/* vm_devices.c, in the VM's life order. */
int vm_devices_create(struct vm *vm, struct error *err);
int vm_devices_attach(struct vm *vm, struct error *err);
void vm_devices_detach(struct vm *vm);
/* Debug lines at the end of a run: every device's and queue's counters. */
void vm_devices_log_stats(const struct vm *vm);
/* Requests still on the thread pool, over every device (snapshots wait for 0). */
unsigned vm_devices_in_flight(const struct vm *vm);
/* A snapshot's window: every virtio device takes no chain and writes nothing into guest RAM
 * until released (virtio_dev_hold). Loop thread, vCPUs paused, no I/O in flight. */
void vm_devices_hold(struct vm *vm, bool hold);
/* The open image fd of --disk number disk (devices are made in the config's disk order), -1 if
 * there is none. */
int vm_devices_disk_fd(const struct vm *vm, unsigned disk);
/* A live migration's hand-over: every device lets go of (release) or takes its host claims
 * (kind->hand_over: the disks' locks). Loop thread, vCPUs stopped, no I/O in flight. */
int vm_devices_hand_over(struct vm *vm, bool release, struct error *err);
void vm_devices_destroy(struct vm *vm);

#endif
