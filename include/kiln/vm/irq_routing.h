/* The GSI routing table kiln gives KVM (KVM_SET_GSI_ROUTING): the PC wiring that the MADT and
 * the MP table describe to the guest. */
#ifndef KILN_IRQ_ROUTING_H
#define KILN_IRQ_ROUTING_H

#include <linux/kvm.h>

/* ISA IRQs 0-15 (IRQ 2 excepted: the PICs' cascade) on a PIC pin and an IOAPIC pin each,
 * GSIs 16-23 on the IOAPIC only. */
#define IRQ_ROUTING_ENTRIES (2 * 15 + 8)

/* Fills entries[IRQ_ROUTING_ENTRIES]: GSI N goes to IOAPIC pin N and, below 16, to its PIC
 * pin, except that GSI 0 (the in-kernel PIT's) goes to IOAPIC pin 2. KVM's default routing
 * sends GSI 0 to pin 0 instead, where a guest told "IRQ 0 is on pin 2" never looks. */
void irq_routing_fill(struct kvm_irq_routing_entry entries[IRQ_ROUTING_ENTRIES]);

#endif
