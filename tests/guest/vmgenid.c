/* vmgenid.elf: finds the VM generation ID through the DSDT's ADDR method and prints it (and a
 * NIC's MAC), again at each VM generation interrupt (a restore); exits 0 on the power button. */
#include "runtime/acpi.h"
#include "runtime/apic.h"
#include "runtime/guest.h"
#include "runtime/virtio.h"

#define GENERATION_VECTOR   0x41
#define POWER_BUTTON_VECTOR 0x40
#define SPURIOUS_VECTOR     0xff
#define ID_SIZE             16
#define VIRTIO_ID_NET       1

/* AML bytes of the ADDR method kiln writes (docs/acpi.md): MethodOp PkgLength "ADDR" flags,
 * then ReturnOp PackageOp PkgLength NumElements(2) and the two integers, low then high. */
#define AML_METHOD_OP  0x14
#define AML_RETURN_OP  0xa4
#define AML_PACKAGE_OP 0x12

static volatile unsigned notifies;
/* A virtio-net device from the command line (--device-discovery cmdline), if there is one:
 * its config space's MAC is printed with each ID, read afresh as a driver that probes again
 * would (kiln restore --clone changes it). */
static struct virtio_dev net;
static int have_net;
static volatile int power_pressed;

struct interrupt_frame;

/* Vector GENERATION_VECTOR: an edge on PLATFORM_VMGENID_GSI. An OS would run the GED's _EVT,
 * which notifies VGEN; the kit counts it. */
__attribute__((interrupt)) static void generation_interrupt(struct interrupt_frame *frame)
{
    (void)frame;
    notifies = notifies + 1;
    lapic_eoi();
}

__attribute__((interrupt)) static void power_button_interrupt(struct interrupt_frame *frame)
{
    (void)frame;
    power_pressed = 1;
    lapic_eoi();
}

__attribute__((interrupt)) static void spurious_interrupt(struct interrupt_frame *frame)
{
    (void)frame;
}

/* One AML integer: ZeroOp, OneOp, or a Byte/Word/DWord/QWord constant. Returns the bytes it
 * took, 0 if p does not start an integer. */
static unsigned aml_integer(const uint8_t *p, const uint8_t *end, uint64_t *value)
{
    static const unsigned prefix_size[] = {[0x0a] = 1, [0x0b] = 2, [0x0c] = 4, [0x0e] = 8};
    if (p >= end)
        return 0;
    if (p[0] == 0x00 || p[0] == 0x01) {
        *value = p[0];
        return 1;
    }
    if (p[0] >= sizeof(prefix_size) / sizeof(prefix_size[0]) || !prefix_size[p[0]])
        return 0;
    unsigned n = prefix_size[p[0]];
    if (p + 1 + n > end)
        return 0;
    *value = 0;
    memcpy(value, p + 1, n);
    return 1 + n;
}

/* The address ADDR returns, read from the DSDT's bytes (the kit has no AML interpreter, so it
 * expects the method's one-statement form); 0 if the DSDT has no such method. */
static uint64_t find_id_address(void)
{
    const struct acpi_header *dsdt = acpi_find_dsdt();
    if (!dsdt)
        return 0;
    const uint8_t *p = (const uint8_t *)dsdt, *end = p + dsdt->length;
    for (; p + 10 < end; p++) {
        /* MethodOp, a one-byte PkgLength, "ADDR", no arguments, Return (Package (2) {...}) */
        if (p[0] != AML_METHOD_OP || memcmp(p + 2, "ADDR", 4) != 0 || p[6] != 0 ||
            p[7] != AML_RETURN_OP || p[8] != AML_PACKAGE_OP || p[10] != 2)
            continue;
        uint64_t low, high;
        unsigned n = aml_integer(p + 11, end, &low);
        if (n == 0 || aml_integer(p + 11 + n, end, &high) == 0)
            break;
        return (high << 32) | (low & 0xffffffffu);
    }
    puts("vmgenid: the DSDT has no ADDR method returning a package of two integers");
    return 0;
}

static void print_id(const volatile uint8_t *id, unsigned count)
{
    print("vmgenid: id ");
    for (unsigned i = 0; i < ID_SIZE; i++)
        printf("%02x", id[i]);
    printf(" notifies %u", count);
    if (have_net) {
        print(" mac ");
        for (uint32_t i = 0; i < 6; i++)
            printf("%s%02x", i ? ":" : "", virtio_config_read8(&net, i));
    }
    print("\n");
}

/* Routes GSI gsi to vector on this CPU through the MADT's I/O APIC. */
static int route(const struct acpi_madt_info *madt, unsigned gsi, uint8_t vector)
{
    if (!madt->have_ioapic || madt->ioapic_gsi_base > gsi) {
        printf("vmgenid: the MADT has no I/O APIC for GSI %u\n", gsi);
        return -1;
    }
    ioapic_route_edge(madt->ioapic_addr, gsi - madt->ioapic_gsi_base, vector, lapic_id());
    return 0;
}

int guest_main(void)
{
    static struct acpi_madt_info madt;
    uint64_t addr = find_id_address();
    if (addr == 0 || acpi_read_madt(&madt) < 0)
        return GUEST_EXIT_FAIL;
    printf("vmgenid: ADDR gives 0x%lx\n", addr);
    have_net = virtio_find(VIRTIO_ID_NET, 0, &net) == 0;
    pic_mask_all();
    idt_set_gate(SPURIOUS_VECTOR, (void (*)(void))(uintptr_t)spurious_interrupt);
    idt_set_gate(GENERATION_VECTOR, (void (*)(void))(uintptr_t)generation_interrupt);
    idt_set_gate(POWER_BUTTON_VECTOR, (void (*)(void))(uintptr_t)power_button_interrupt);
    lapic_enable(SPURIOUS_VECTOR);
    if (route(&madt, PLATFORM_VMGENID_GSI, GENERATION_VECTOR) < 0 ||
        route(&madt, PLATFORM_GED_GSI, POWER_BUTTON_VECTOR) < 0)
        return GUEST_EXIT_FAIL;
    const volatile uint8_t *id = (const volatile uint8_t *)(uintptr_t)addr;
    unsigned shown = 0;
    print_id(id, shown);
    for (;;) {
        /* "sti; hlt" is atomic (sti's shadow): an interrupt after the checks still wakes it. */
        __asm__ volatile("sti; hlt; cli" ::: "memory");
        if (power_pressed) {
            puts("vmgenid: power button");
            return GUEST_EXIT_PASS;
        }
        if (notifies != shown) {
            shown = notifies;
            print_id(id, shown);
        }
    }
}
