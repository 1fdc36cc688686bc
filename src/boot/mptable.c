/* Building the MP table: a floating pointer structure that Linux finds by scanning, and a
 * config table with one processor entry per vCPU, the ISA bus, the IOAPIC and 24 pins. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "kiln/boot/mptable.h"
#include "kiln/vm/platform.h"

#define MP_SPEC_REV       4 /* 1.4 */
#define MP_LAPIC_VERSION  0x14
#define MP_IOAPIC_VERSION 0x11
#define MP_CPU_ENABLED    0x01
#define MP_CPU_BSP        0x02
#define MP_CPU_SIGNATURE  0x600 /* family 6: a modern CPU; Linux reads CPUID anyway */
#define MP_CPU_FEATURES   0x201 /* FPU, APIC */
#define MP_ISA_BUS_ID     0
#define MP_PIT_PIN        PLATFORM_PIT_IOAPIC_PIN /* ISA IRQ 0, as the MADT's override says */

enum mp_entry_type { MP_PROCESSOR, MP_BUS, MP_IOAPIC, MP_INTSRC, MP_LINTSRC };
enum mp_irq_type { MP_INT = 0, MP_NMI = 1, MP_EXTINT = 3 };

struct mp_floating_pointer {
    char signature[4]; /* "_MP_" */
    uint32_t config_table;
    uint8_t length; /* in 16-byte units */
    uint8_t spec_rev;
    uint8_t checksum;
    uint8_t features[5]; /* all zero: a config table is present */
} __attribute__((packed));

struct mp_config_header {
    char signature[4]; /* "PCMP" */
    uint16_t length;
    uint8_t spec_rev;
    uint8_t checksum;
    char oem_id[8];
    char product_id[12];
    uint32_t oem_table;
    uint16_t oem_table_size;
    uint16_t entry_count;
    uint32_t lapic_address;
    uint16_t extended_length;
    uint8_t extended_checksum;
    uint8_t reserved;
} __attribute__((packed));

struct mp_processor {
    uint8_t type, apic_id, apic_version, flags;
    uint32_t signature, features;
    uint32_t reserved[2];
} __attribute__((packed));

struct mp_bus {
    uint8_t type, bus_id;
    char bus_type[6];
} __attribute__((packed));

struct mp_ioapic {
    uint8_t type, apic_id, apic_version, flags;
    uint32_t address;
} __attribute__((packed));

struct mp_irq_entry { /* MP_INTSRC and MP_LINTSRC have the same shape */
    uint8_t type, irq_type;
    uint16_t flags; /* 0: polarity and trigger conform to the bus (ISA: edge, active high) */
    uint8_t source_bus, source_irq, dest_apic, dest_pin;
} __attribute__((packed));

static uint8_t checksum(const void *data, size_t len)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum += ((const uint8_t *)data)[i];
    return (uint8_t)-sum;
}

/* Appends an entry to the table being built in buf. */
static void add(uint8_t *buf, size_t *used, struct mp_config_header *h, const void *entry,
                size_t size)
{
    memcpy(buf + *used, entry, size);
    *used += size;
    h->entry_count++;
}

static void add_irq(uint8_t *buf, size_t *used, struct mp_config_header *h, uint8_t type,
                    uint8_t irq_type, uint8_t irq, uint8_t dest_apic, uint8_t pin)
{
    struct mp_irq_entry e = {.type = type,
                             .irq_type = irq_type,
                             .source_bus = MP_ISA_BUS_ID,
                             .source_irq = irq,
                             .dest_apic = dest_apic,
                             .dest_pin = pin};
    add(buf, used, h, &e, sizeof(e));
}

int mptable_write(const struct guest_mem *mem, unsigned ncpus, struct error *err)
{
    size_t size = sizeof(struct mp_config_header) + ncpus * sizeof(struct mp_processor) +
                  sizeof(struct mp_bus) + sizeof(struct mp_ioapic) +
                  (MPTABLE_IRQS + 2) * sizeof(struct mp_irq_entry);
    if (size > PLATFORM_MP_CONFIG_END - PLATFORM_MP_CONFIG_TABLE)
        return error_fmt(err, -ENOSPC, "MP table: %zu bytes do not fit", size);
    uint8_t *buf = guest_mem_ptr(mem, PLATFORM_MP_CONFIG_TABLE, size);
    struct mp_floating_pointer *fp = guest_mem_ptr(mem, PLATFORM_MP_FLOATING_POINTER, sizeof(*fp));
    if (!buf || !fp)
        return error_fmt(err, -EFAULT, "MP table: guest memory too small");

    struct mp_config_header h = {.signature = {'P', 'C', 'M', 'P'},
                                 .spec_rev = MP_SPEC_REV,
                                 .lapic_address = PLATFORM_LAPIC_ADDR};
    memcpy(h.oem_id, "KILN    ", 8);
    memcpy(h.product_id, "KILNVM      ", 12);
    size_t used = sizeof(h);
    for (unsigned i = 0; i < ncpus; i++) {
        struct mp_processor cpu = {.type = MP_PROCESSOR,
                                   .apic_id = (uint8_t)i,
                                   .apic_version = MP_LAPIC_VERSION,
                                   .flags = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0),
                                   .signature = MP_CPU_SIGNATURE,
                                   .features = MP_CPU_FEATURES};
        add(buf, &used, &h, &cpu, sizeof(cpu));
    }
    struct mp_bus bus = {.type = MP_BUS, .bus_id = MP_ISA_BUS_ID};
    memcpy(bus.bus_type, "ISA   ", 6);
    add(buf, &used, &h, &bus, sizeof(bus));
    struct mp_ioapic ioapic = {.type = MP_IOAPIC,
                               .apic_id = PLATFORM_IOAPIC_ID,
                               .apic_version = MP_IOAPIC_VERSION,
                               .flags = 1,
                               .address = PLATFORM_IOAPIC_ADDR};
    add(buf, &used, &h, &ioapic, sizeof(ioapic));
    /* Pins 0-23 for IRQs 0-23, except that the PIT's IRQ 0 is wired to pin 2 (pin 0 then
     * stays unused, like on PC chipsets) and IRQ 2 has no entry of its own. */
    for (uint8_t irq = 0; irq < MPTABLE_IRQS; irq++) {
        if (irq == MP_PIT_PIN)
            continue;
        add_irq(buf, &used, &h, MP_INTSRC, MP_INT, irq, PLATFORM_IOAPIC_ID,
                irq == 0 ? MP_PIT_PIN : irq);
    }
    add_irq(buf, &used, &h, MP_LINTSRC, MP_EXTINT, 0, 0xff, 0); /* LINT0: the PIC, all CPUs */
    add_irq(buf, &used, &h, MP_LINTSRC, MP_NMI, 0, 0xff, 1);    /* LINT1: NMI */

    h.length = (uint16_t)used;
    memcpy(buf, &h, sizeof(h));
    ((struct mp_config_header *)buf)->checksum = checksum(buf, used);

    struct mp_floating_pointer p = {.signature = {'_', 'M', 'P', '_'},
                                    .config_table = (uint32_t)PLATFORM_MP_CONFIG_TABLE,
                                    .length = 1,
                                    .spec_rev = MP_SPEC_REV};
    p.checksum = checksum(&p, sizeof(p));
    memcpy(fp, &p, sizeof(p));
    return 0;
}
