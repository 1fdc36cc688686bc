/* The VM-wide state KVM holds for a guest, read out and written back for snapshots and
 * migration: the in-kernel PIC pair and IOAPIC, the PIT, and the guest's kvmclock. */
#ifndef KILN_VM_STATE_H
#define KILN_VM_STATE_H

#include <linux/kvm.h>
#include <stdint.h>

#include "kiln/util/error.h"

/* KVM's own structures (fixed-width fields, padding explicit in the ABI), without implicit
 * padding between them; save zeroes what KVM does not fill (the rest of each irqchip union,
 * the PIT's and the clock's reserved words), so equal states are equal bytes.
 *
 * What a restore does not bring back: the PIT's count_load_time (KVM restarts each channel's
 * count at KVM_SET_PIT2, so a countdown in progress starts over), and the time the VM spent
 * saved: kvmclock resumes at the saved value, as if no time had passed (the CMOS RTC, by
 * contrast, follows the host's clock; see devices/rtc.h). */
struct vm_state {
    struct kvm_irqchip pic_master; /* chip_id KVM_IRQCHIP_PIC_MASTER */
    struct kvm_irqchip pic_slave;  /* chip_id KVM_IRQCHIP_PIC_SLAVE */
    struct kvm_irqchip ioapic;     /* chip_id KVM_IRQCHIP_IOAPIC */
    struct kvm_pit_state2 pit;
    struct kvm_clock_data clock;
};
_Static_assert(sizeof(struct vm_state) == 3 * sizeof(struct kvm_irqchip) +
                                              sizeof(struct kvm_pit_state2) +
                                              sizeof(struct kvm_clock_data),
               "vm_state: no implicit padding");

/* Reads the irqchip, PIT and clock of a VM made with KVM_CREATE_IRQCHIP and KVM_CREATE_PIT2.
 * Its vCPUs must not be running. */
int vm_state_save(int vm_fd, struct vm_state *out, struct error *err);

/* Checks in (chip ids, flags, reserved and unused bytes zero; KVM checks the contents of its
 * own structures) and only then writes it into a VM made like the saved one, before its
 * vCPUs' state (vcpu_state.h): interrupt controllers, then the PIT (whose reload may raise
 * IRQ 0 into them), then the clock, last because it starts counting at once. A check failing
 * returns -EINVAL, VM untouched; an ioctl failing leaves it partly written: discard it. */
int vm_state_restore(int vm_fd, const struct vm_state *in, struct error *err);

#endif
