/* A VM's whole state as state-file sections (docs/snapshots.md), shared by snapshots and live
 * migration: the devices' copied on the loop, KVM's read from paused vCPUs, the disks' ids. */
#ifndef KILN_VM_SECTIONS_H
#define KILN_VM_SECTIONS_H

#include <stdint.h>

#include "kiln/snapshot/snap_state.h"
#include "kiln/util/error.h"
#include "kiln/vm/vm.h"
#include "kiln/vm/vm_snapshot_sections.h"

/* One device's or transport's state, copied on the loop. */
struct vm_section {
    char name[VM_SNAPSHOT_NAME_SIZE];
    int32_t slot;
    uint32_t size;
    void *data;
};

struct vm_sections {
    struct vm_section items[VM_MAX_DEVICES + PLATFORM_VIRTIO_MMIO_MAX];
    unsigned count;
};

/* Loop thread, vCPUs paused and no block I/O in flight: copies each device's and each virtio
 * transport's state, in one callback so nothing can start between the check and the copy.
 * On failure what was copied stays in s for vm_sections_free. */
int vm_sections_collect(struct vm *vm, struct vm_sections *s, struct error *err);
void vm_sections_free(struct vm_sections *s);

/* Any thread, vCPUs paused: KVM's VM-wide state and the wall clock's time (a restore moves
 * kvmclock on from it), each vCPU's, then the sections and each disk's identity, into w. */
int vm_sections_write(struct vm *vm, const struct vm_sections *s, struct snap_writer *w,
                      struct error *err);

/* Any thread, vCPUs paused and I/O drained: each device's host data to stable storage. */
int vm_sections_flush_devices(struct vm *vm, struct error *err);

#endif
