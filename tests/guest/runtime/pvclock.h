/* kvmclock (KVM's pvclock) for kit guests: nanoseconds that also count the time the VM was
 * stopped, which a guest's own TSC does not after the VMM restores the TSC it saved. */
#ifndef KILN_GUEST_PVCLOCK_H
#define KILN_GUEST_PVCLOCK_H

#include <stdint.h>

/* The time-info record KVM keeps up to date for one vCPU (the pvclock ABI, 32 bytes). The
 * hypervisor writes it; the guest only reads it, so every field is read through volatile. */
struct pvclock_time_info {
    uint32_t version; /* odd while the hypervisor is rewriting the record */
    uint32_t pad0;
    uint64_t tsc_timestamp;
    uint64_t system_time;
    uint32_t tsc_to_system_mul;
    int8_t tsc_shift;
    uint8_t flags;
    uint8_t pad[2];
} __attribute__((aligned(32)));

/* At ring 0 on the vCPU that will read it: checks CPUID for KVM and its clocksource2 feature,
 * then asks KVM to keep *info updated (MSR_KVM_SYSTEM_TIME_NEW). Returns NULL when the clock
 * runs, else why not in a few words (for a guest's one error line). info must stay in place
 * for as long as the guest runs, and its physical address must equal its address (the kit
 * maps memory 1:1). */
const char *pvclock_enable(struct pvclock_time_info *info);

/* Nanoseconds since an arbitrary start, from info and the TSC. Uses only memory reads and
 * rdtsc, so it works at CPL3 (user_run) too. */
uint64_t pvclock_read_ns(const volatile struct pvclock_time_info *info);

#endif
