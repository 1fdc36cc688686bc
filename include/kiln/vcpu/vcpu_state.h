/* A vCPU's architectural state as KVM holds it, read out and written back for snapshots and
 * migration: registers, FPU/XSAVE, XCRs, MSRs, local APIC, pending events, MP state, debug regs. */
#ifndef KILN_VCPU_STATE_H
#define KILN_VCPU_STATE_H

#include <linux/kvm.h>
#include <stdint.h>

#include "kiln/util/error.h"

/* KVM_GET/SET_MSRS refuse 256 entries or more in one call (MAX_IO_MSRS in the kernel's
 * arch/x86/kvm/x86.c); keeping at most 255 means the whole list is always one call. */
#define VCPU_STATE_MAX_MSRS 255
/* The fixed part of struct kvm_xsave: what KVM_CAP_XSAVE2 reports unless a dynamic XSAVE
 * feature (AMX) was enabled with arch_prctl(), which kiln never does. */
#define VCPU_STATE_XSAVE_SIZE 4096

/* What this host's KVM offers for vCPU state, found once per VM by vcpu_state_probe() and
 * passed to every save and restore. Not saved itself: it describes the host, not the guest. */
struct vcpu_state_caps {
    uint32_t xsave_size;   /* bytes KVM_GET_XSAVE(2) fills; 0: no XSAVE, KVM_GET_FPU instead */
    uint32_t xsave2;       /* 1 with KVM_CAP_XSAVE2: KVM_GET_XSAVE2, sized by it */
    uint32_t xcrs;         /* 1 with KVM_CAP_XCRS */
    uint32_t nmsrs_listed; /* KVM's MSR index list plus kiln's extras, before filtering */
    uint32_t nmsrs;        /* of those, the ones KVM_GET_MSRS reads on this vCPU: the ones saved */
    uint32_t msrs[VCPU_STATE_MAX_MSRS];
};

/* One vCPU's state. KVM's own structures (fixed-width fields, padding explicit in the ABI) and
 * kiln's counts, laid out without implicit padding; save zeroes everything it does not fill,
 * so equal states are equal bytes. About 10.5 KiB: allocate it, do not put it on a stack. */
struct vcpu_state {
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_fpu fpu;   /* x87/SSE, only where KVM lacks XSAVE (xsave_size 0); else zero */
    struct kvm_xcrs xcrs; /* nr_xcrs 0 where KVM lacks KVM_CAP_XCRS */
    struct kvm_lapic_state lapic;
    struct kvm_vcpu_events events; /* flags say which fields KVM_SET_VCPU_EVENTS applies */
    struct kvm_debugregs debugregs;
    struct kvm_mp_state mp_state;
    uint32_t tsc_khz;      /* the guest's TSC frequency; 0 if KVM could not say */
    uint32_t xsave_size;   /* bytes of xsave in use: the host's caps.xsave_size */
    uint32_t nmsrs;        /* entries of msrs in use, in the caps' order */
    uint32_t msrs_skipped; /* listed MSRs KVM refused to read at save time: not in msrs */
    uint32_t pad;          /* zero */
    struct kvm_msr_entry msrs[VCPU_STATE_MAX_MSRS];
    uint8_t xsave[VCPU_STATE_XSAVE_SIZE]; /* KVM_GET_XSAVE's image (layout: the host's CPUID 0xD) */
};
_Static_assert(sizeof(struct vcpu_state) ==
                   sizeof(struct kvm_regs) + sizeof(struct kvm_sregs) + sizeof(struct kvm_fpu) +
                       sizeof(struct kvm_xcrs) + sizeof(struct kvm_lapic_state) +
                       sizeof(struct kvm_vcpu_events) + sizeof(struct kvm_debugregs) +
                       sizeof(struct kvm_mp_state) + 5 * sizeof(uint32_t) +
                       VCPU_STATE_MAX_MSRS * sizeof(struct kvm_msr_entry) + VCPU_STATE_XSAVE_SIZE,
               "vcpu_state: no implicit padding");

/* Finds what KVM offers (kvm_fd: /dev/kvm, vm_fd: the VM, vcpu_fd: one of its vCPUs, which
 * decides which MSRs are readable). Fails with one line if a state ioctl kiln relies on is
 * missing or the state would not fit struct vcpu_state. */
int vcpu_state_probe(int kvm_fd, int vm_fd, int vcpu_fd, struct vcpu_state_caps *caps,
                     struct error *err);

/* A vCPU stopped right after a port I/O or MMIO exit has not finished that instruction: KVM
 * completes it on the next KVM_RUN and keeps the pending part where no state ioctl sees it.
 * This enters KVM_RUN with immediate_exit set, so KVM completes it and returns without running
 * the guest. Call it before vcpu_state_save() on a vCPU that has run; run is its kvm_run. */
int vcpu_state_complete_io(int vcpu_fd, struct kvm_run *run, struct error *err);

/* Reads the vCPU's state; the vCPU must not be running (its thread stopped or not started). */
int vcpu_state_save(int vcpu_fd, const struct vcpu_state_caps *caps, struct vcpu_state *out,
                    struct error *err);

/* Checks in against caps (counts, sizes, flags, MSRs this host carries, padding) and only
 * then writes it into a vCPU created the way the saved one was (same CPUID; vcpu_create) that
 * has not run yet. Load the VM's state (vm_state.h) first. A check failing returns -EINVAL,
 * vCPU untouched; a KVM ioctl failing leaves it partly written: discard it. */
int vcpu_state_restore(int vcpu_fd, const struct vcpu_state_caps *caps, const struct vcpu_state *in,
                       struct error *err);

#endif
