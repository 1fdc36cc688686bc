/* The GSI routing kiln installs in KVM: every legacy IRQ on its PIC pin and IOAPIC pin, the
 * PIT's IRQ 0 on IOAPIC pin 2, and the virtio GSIs on the IOAPIC (kiln/irq_routing.h). */
#include <string.h>

#include "kiln/vm/irq_routing.h"
#include "kiln/vm/platform.h"

#define ISA_IRQS     16
#define PIC_CASCADE  2 /* the slave PIC's input on the master: no device of its own */
#define PINS_PER_PIC 8

static struct kvm_irq_routing_entry route(unsigned gsi, unsigned chip, unsigned pin)
{
    struct kvm_irq_routing_entry e;
    memset(&e, 0, sizeof(e));
    e.gsi = gsi;
    e.type = KVM_IRQ_ROUTING_IRQCHIP;
    e.u.irqchip.irqchip = chip;
    e.u.irqchip.pin = pin;
    return e;
}

void irq_routing_fill(struct kvm_irq_routing_entry entries[IRQ_ROUTING_ENTRIES])
{
    unsigned n = 0;
    for (unsigned gsi = 0; gsi < PLATFORM_IOAPIC_PINS; gsi++) {
        if (gsi == PIC_CASCADE)
            continue;
        if (gsi < ISA_IRQS) {
            unsigned pic = gsi < PINS_PER_PIC ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
            entries[n++] = route(gsi, pic, gsi % PINS_PER_PIC);
        }
        unsigned pin = gsi == 0 ? PLATFORM_PIT_IOAPIC_PIN : gsi;
        entries[n++] = route(gsi, KVM_IRQCHIP_IOAPIC, pin);
    }
}
