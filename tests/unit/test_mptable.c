/* Unit tests for the MP table: where Linux finds it, both checksums, one processor entry per
 * vCPU with the BSP flagged, the IOAPIC, and the IRQ -> pin entries (IRQ 0 on pin 2, virtio's
 * IRQs 16-23 on pins 16-23, as virtio_mmio.device= assumes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kiln/boot/mptable.h"
#include "kiln/vm/platform.h"

static uint8_t sum(const uint8_t *p, size_t len)
{
    uint8_t s = 0;
    while (len--)
        s += *p++;
    return s;
}

static void test_table(void **state)
{
    struct guest_mem mem;
    assert_int_equal(guest_mem_init(&mem, 16 << 20, NULL), 0);
    assert_int_equal(mptable_write(&mem, 3, NULL), 0);

    const uint8_t *fp = guest_mem_ptr(&mem, PLATFORM_MP_FLOATING_POINTER, 16);
    assert_memory_equal(fp, "_MP_", 4);
    assert_int_equal(sum(fp, 16), 0);
    uint32_t config;
    memcpy(&config, fp + 4, 4);
    assert_int_equal(config, PLATFORM_MP_CONFIG_TABLE);
    assert_int_equal(fp[8], 1); /* length in paragraphs */
    assert_int_equal(fp[9], 4); /* spec 1.4 */

    const uint8_t *t = guest_mem_ptr(&mem, PLATFORM_MP_CONFIG_TABLE, 44);
    assert_memory_equal(t, "PCMP", 4);
    uint16_t length, count;
    memcpy(&length, t + 4, 2);
    memcpy(&count, t + 34, 2);
    assert_int_equal(sum(t, length), 0);
    assert_int_equal(count, 3 + 1 + 1 + 23 + 2);
    assert_int_equal(length, 44 + 3 * 20 + 8 + 8 + 25 * 8);

    const uint8_t *e = t + 44;
    for (unsigned cpu = 0; cpu < 3; cpu++, e += 20) {
        assert_int_equal(e[0], 0);   /* processor */
        assert_int_equal(e[1], cpu); /* APIC ID */
        assert_int_equal(e[3], cpu == 0 ? 3 : 1);
    }
    assert_int_equal(e[0], 1); /* bus */
    assert_memory_equal(e + 2, "ISA   ", 6);
    e += 8;
    assert_int_equal(e[0], 2); /* IOAPIC */
    uint32_t ioapic;
    memcpy(&ioapic, e + 4, 4);
    assert_int_equal(ioapic, PLATFORM_IOAPIC_ADDR);
    e += 8;
    int pin_of_irq[24];
    memset(pin_of_irq, -1, sizeof(pin_of_irq));
    for (unsigned i = 0; i < 23; i++, e += 8) {
        assert_int_equal(e[0], 3); /* I/O interrupt */
        pin_of_irq[e[5]] = e[7];
    }
    assert_int_equal(pin_of_irq[0], 2);
    assert_int_equal(pin_of_irq[2], -1);
    assert_int_equal(pin_of_irq[4], 4);
    for (int irq = 16; irq < 24; irq++)
        assert_int_equal(pin_of_irq[irq], irq);
    assert_int_equal(e[0], 4); /* local interrupts: ExtINT on LINT0, NMI on LINT1 */
    assert_int_equal(e[1], 3);
    assert_int_equal(e[8 + 1], 1);
    guest_mem_destroy(&mem);
}

static void test_largest_vm_fits(void **state)
{
    struct guest_mem mem;
    assert_int_equal(guest_mem_init(&mem, 16 << 20, NULL), 0);
    assert_int_equal(mptable_write(&mem, 254, NULL), 0);
    guest_mem_destroy(&mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_largest_vm_fits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
