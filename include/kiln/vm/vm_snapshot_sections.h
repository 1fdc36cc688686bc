/* The sections of a snapshot's state file that are the VM's own (the devices' sections are
 * named after their device table entries): their names, and the small clock record. */
#ifndef KILN_VM_SNAPSHOT_SECTIONS_H
#define KILN_VM_SNAPSHOT_SECTIONS_H

#include <stdint.h>
#include <time.h>

#define VM_SNAPSHOT_NAME_SIZE 32

#define VM_SNAPSHOT_SECTION_VM        "vm"          /* struct vm_state, slot -1 */
#define VM_SNAPSHOT_SECTION_CLOCK     "clock"       /* struct vm_snapshot_clock, slot -1 */
#define VM_SNAPSHOT_SECTION_VCPU      "vcpu"        /* struct vcpu_state, slot: the vCPU */
#define VM_SNAPSHOT_SECTION_TRANSPORT "virtio-mmio" /* struct virtio_mmio_state, slot: its slot */
#define VM_SNAPSHOT_SECTION_DISK      "disk"        /* struct snap_disk_id, slot: --disk index */

/* When the snapshot was taken, on the host's wall clock: a restore moves kvmclock on by the
 * time since, so the guest's clock keeps up with the world's. */
struct vm_snapshot_clock {
    uint64_t realtime_ns;
};

static inline uint64_t vm_snapshot_realtime_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

#endif
