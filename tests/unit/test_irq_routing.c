/* Unit tests for kiln's GSI routing: the table given to KVM must wire each interrupt where the
 * MADT and the MP table tell the guest to look, above all the PIT's IRQ 0 on IOAPIC pin 2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kiln/acpi/acpi.h"
#include "kiln/vm/irq_routing.h"
#include "kiln/vm/platform.h"

struct targets {
    int pic_chip, pic_pin, ioapic_pin; /* -1: none */
};

/* Where GSI gsi goes, failing on a route that is not to an irqchip or is doubled. */
static struct targets targets_of(const struct kvm_irq_routing_entry *entries, unsigned gsi)
{
    struct targets t = {-1, -1, -1};
    for (unsigned i = 0; i < IRQ_ROUTING_ENTRIES; i++) {
        const struct kvm_irq_routing_entry *e = &entries[i];
        if (e->gsi != gsi)
            continue;
        assert_int_equal(e->type, KVM_IRQ_ROUTING_IRQCHIP);
        if (e->u.irqchip.irqchip == KVM_IRQCHIP_IOAPIC) {
            assert_int_equal(t.ioapic_pin, -1);
            t.ioapic_pin = (int)e->u.irqchip.pin;
        } else {
            assert_int_equal(t.pic_chip, -1);
            t.pic_chip = (int)e->u.irqchip.irqchip;
            t.pic_pin = (int)e->u.irqchip.pin;
        }
    }
    return t;
}

static void test_pit_irq0_on_ioapic_pin_2(void **state)
{
    struct kvm_irq_routing_entry entries[IRQ_ROUTING_ENTRIES];
    irq_routing_fill(entries);
    struct targets t = targets_of(entries, 0);
    assert_int_equal(t.ioapic_pin, ACPI_PIT_GSI);
    assert_int_equal(t.ioapic_pin, 2);
    assert_int_equal(t.pic_chip, KVM_IRQCHIP_PIC_MASTER);
    assert_int_equal(t.pic_pin, 0);
}

static void test_cascade_has_no_route(void **state)
{
    struct kvm_irq_routing_entry entries[IRQ_ROUTING_ENTRIES];
    irq_routing_fill(entries);
    struct targets t = targets_of(entries, 2);
    assert_int_equal(t.ioapic_pin, -1);
    assert_int_equal(t.pic_chip, -1);
}

static void test_isa_irqs_on_pic_and_same_ioapic_pin(void **state)
{
    struct kvm_irq_routing_entry entries[IRQ_ROUTING_ENTRIES];
    irq_routing_fill(entries);
    for (unsigned gsi = 1; gsi < 16; gsi++) {
        if (gsi == 2)
            continue;
        struct targets t = targets_of(entries, gsi);
        assert_int_equal(t.ioapic_pin, gsi);
        assert_int_equal(t.pic_chip, gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE);
        assert_int_equal(t.pic_pin, gsi % 8);
    }
    /* The devices kiln raises by GSI: the serial port, the RTC, the GED. */
    assert_int_equal(targets_of(entries, PLATFORM_COM1_IRQ).ioapic_pin, PLATFORM_COM1_IRQ);
    assert_int_equal(targets_of(entries, PLATFORM_RTC_IRQ).ioapic_pin, PLATFORM_RTC_IRQ);
    assert_int_equal(targets_of(entries, PLATFORM_GED_GSI).ioapic_pin, PLATFORM_GED_GSI);
}

static void test_virtio_gsis_on_ioapic_only(void **state)
{
    struct kvm_irq_routing_entry entries[IRQ_ROUTING_ENTRIES];
    irq_routing_fill(entries);
    for (unsigned i = 0; i < PLATFORM_VIRTIO_MMIO_MAX; i++) {
        unsigned gsi = PLATFORM_VIRTIO_GSI_BASE + i;
        struct targets t = targets_of(entries, gsi);
        assert_int_equal(t.ioapic_pin, gsi);
        assert_int_equal(t.pic_chip, -1);
    }
}

static void test_no_ioapic_pin_shared(void **state)
{
    struct kvm_irq_routing_entry entries[IRQ_ROUTING_ENTRIES];
    irq_routing_fill(entries);
    int owner[PLATFORM_IOAPIC_PINS];
    for (unsigned i = 0; i < PLATFORM_IOAPIC_PINS; i++)
        owner[i] = -1;
    for (unsigned i = 0; i < IRQ_ROUTING_ENTRIES; i++) {
        if (entries[i].u.irqchip.irqchip != KVM_IRQCHIP_IOAPIC)
            continue;
        unsigned pin = entries[i].u.irqchip.pin;
        assert_true(pin < PLATFORM_IOAPIC_PINS);
        assert_int_equal(owner[pin], -1);
        owner[pin] = (int)entries[i].gsi;
    }
    assert_int_equal(owner[0], -1); /* pin 0 stays unused, as on PC chipsets */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pit_irq0_on_ioapic_pin_2),
        cmocka_unit_test(test_cascade_has_no_route),
        cmocka_unit_test(test_isa_irqs_on_pic_and_same_ioapic_pin),
        cmocka_unit_test(test_virtio_gsis_on_ioapic_only),
        cmocka_unit_test(test_no_ioapic_pin_shared),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
