/* power.elf: ACPI power control as a hardware-reduced OS does it, by mode= on the command
 * line: power off or reset through the FADT's registers, or power off on the power button. */
#include "runtime/acpi.h"
#include "runtime/apic.h"
#include "runtime/guest.h"

#define POWER_BUTTON_VECTOR 0x40
#define SPURIOUS_VECTOR     0xff
/* How long a write that should end the VM gets before the guest calls it a failure. The
 * VMM may act on it asynchronously (QEMU does), so exiting at once could win the race. */
#define STILL_RUNNING_DELAY 3000000000ULL /* TSC ticks, about a second */

static const struct acpi_header *fadt;
static volatile int button_pressed;

struct interrupt_frame;

/* Vector POWER_BUTTON_VECTOR: the GED's edge on PLATFORM_GED_GSI. Nothing in the GED needs
 * acknowledging (kiln's has no registers; a real OS would run its _EVT method). */
__attribute__((interrupt)) static void power_button_interrupt(struct interrupt_frame *frame)
{
    (void)frame;
    button_pressed = 1;
    lapic_eoi();
}

/* Spurious interrupts take no EOI (SDM vol. 3 §11.9). */
__attribute__((interrupt)) static void spurious_interrupt(struct interrupt_frame *frame)
{
    (void)frame;
}

static int find_fadt(void)
{
    fadt = acpi_find_table("FACP");
    if (!fadt)
        return -1;
    if (fadt->length < ACPI_FADT_FLAGS + 4) {
        printf("power: the FADT is too short (%u bytes) to hold its flags\n", fadt->length);
        return -1;
    }
    uint32_t flags;
    memcpy(&flags, (const uint8_t *)fadt + ACPI_FADT_FLAGS, 4);
    printf("power: FADT revision %u, %u bytes, flags 0x%x%s\n", fadt->revision, fadt->length, flags,
           (flags & ACPI_FADT_F_HW_REDUCED) ? " (hardware-reduced)" : "");
    return 0;
}

static void describe(const char *name, const struct acpi_gas *gas)
{
    printf("power: %s is %s 0x%lx, %u bits\n", name, acpi_space_name(gas->space_id), gas->address,
           gas->bit_width);
}

/* A register the kit can write: I/O or memory, non-zero address. */
static int usable_gas(const char *name, unsigned offset, struct acpi_gas *gas)
{
    if (acpi_table_gas(fadt, offset, gas) < 0) {
        printf("power: the FADT is too short to hold %s\n", name);
        return -1;
    }
    describe(name, gas);
    if (gas->address == 0 ||
        (gas->space_id != ACPI_GAS_SYSTEM_IO && gas->space_id != ACPI_GAS_SYSTEM_MEMORY)) {
        printf("power: %s is not a register the guest can write\n", name);
        return -1;
    }
    return 0;
}

static int still_running(const char *what)
{
    tsc_delay(STILL_RUNNING_DELAY);
    printf("power: still running after %s\n", what);
    return GUEST_EXIT_FAIL;
}

/* S5 as a hardware-reduced OS enters it (ACPI 6.5 §7.4.2.5): SLP_TYP from the \_S5 object
 * and SLP_EN, in one write to SLEEP_CONTROL_REG. The guest has no AML interpreter, so it
 * uses the \_S5 value kiln documents (QEMU's GED uses the same 5). */
static int power_off(void)
{
    struct acpi_gas reg;
    if (usable_gas("SLEEP_CONTROL_REG", ACPI_FADT_SLEEP_CONTROL_REG, &reg) < 0)
        return GUEST_EXIT_FAIL;
    uint32_t value = (PLATFORM_SLEEP_TYPE_S5 << PLATFORM_SLEEP_TYPE_SHIFT) | PLATFORM_SLEEP_ENABLE;
    printf("power: powering off: writing 0x%x (SLP_TYP %u, SLP_EN)\n", value,
           PLATFORM_SLEEP_TYPE_S5);
    if (acpi_gas_write(&reg, value) < 0) {
        puts("power: SLEEP_CONTROL_REG has an access width the guest cannot use");
        return GUEST_EXIT_FAIL;
    }
    return still_running("the S5 write");
}

static int acpi_reset(void)
{
    uint32_t flags;
    memcpy(&flags, (const uint8_t *)fadt + ACPI_FADT_FLAGS, 4);
    if (!(flags & ACPI_FADT_F_RESET_REG_SUP)) {
        puts("power: the FADT does not set RESET_REG_SUP");
        return GUEST_EXIT_FAIL;
    }
    struct acpi_gas reg;
    if (usable_gas("RESET_REG", ACPI_FADT_RESET_REG, &reg) < 0)
        return GUEST_EXIT_FAIL;
    if (fadt->length <= ACPI_FADT_RESET_VALUE) {
        puts("power: the FADT is too short to hold RESET_VALUE");
        return GUEST_EXIT_FAIL;
    }
    uint8_t value = ((const uint8_t *)fadt)[ACPI_FADT_RESET_VALUE];
    printf("power: resetting: writing RESET_VALUE 0x%x\n", value);
    if (acpi_gas_write(&reg, value) < 0) {
        puts("power: RESET_REG has an access width the guest cannot use");
        return GUEST_EXIT_FAIL;
    }
    return still_running("the reset write");
}

/* The I/O APIC that serves PLATFORM_GED_GSI, from the MADT (kiln: one, at GSI 0). */
static int find_ioapic_pin(uint32_t *addr, unsigned *pin)
{
    static struct acpi_madt_info madt;
    if (acpi_read_madt(&madt) < 0)
        return -1;
    if (!madt.have_ioapic || madt.ioapic_gsi_base > PLATFORM_GED_GSI) {
        printf("power: the MADT has no I/O APIC for GSI %d\n", PLATFORM_GED_GSI);
        return -1;
    }
    *addr = madt.ioapic_addr;
    *pin = PLATFORM_GED_GSI - madt.ioapic_gsi_base;
    return 0;
}

/* Everything is routed before the "waiting" line, so a press the host sends as soon as it
 * sees that line is held in the local APIC until sti, never lost. */
static int wait_for_power_button(void)
{
    uint32_t ioapic;
    unsigned pin;
    if (find_ioapic_pin(&ioapic, &pin) < 0)
        return GUEST_EXIT_FAIL;
    pic_mask_all();
    idt_set_gate(SPURIOUS_VECTOR, (void (*)(void))(uintptr_t)spurious_interrupt);
    idt_set_gate(POWER_BUTTON_VECTOR, (void (*)(void))(uintptr_t)power_button_interrupt);
    lapic_enable(SPURIOUS_VECTOR);
    ioapic_route_edge(ioapic, pin, POWER_BUTTON_VECTOR, lapic_id());
    printf("power: GSI %d -> I/O APIC 0x%x pin %u -> vector 0x%x on cpu %u\n", PLATFORM_GED_GSI,
           ioapic, pin, POWER_BUTTON_VECTOR, lapic_id());
    puts("power: waiting for the power button");
    /* sti's one-instruction shadow makes "sti; hlt" atomic: a press between the check and
     * the hlt still wakes the hlt. */
    while (!button_pressed)
        __asm__ volatile("sti; hlt; cli" ::: "memory");
    puts("power: power button pressed");
    return power_off();
}

/* A guest that never answers the button: interrupts stay off, so only the host ends it. */
__attribute__((noreturn)) static void ignore_power_button(void)
{
    puts("power: waiting for the power button");
    puts("power: ignoring it (interrupts stay disabled)");
    for (;;)
        __asm__ volatile("cli; hlt");
}

int guest_main(void)
{
    const char *mode = cmdline_get("mode");
    if (mode && cmdline_value_is(mode, "ignore-power-button"))
        ignore_power_button();
    if (!mode) {
        puts("power: give mode=poweroff|acpi-reset|wait-power-button|ignore-power-button");
        return GUEST_EXIT_FAIL;
    }
    if (find_fadt() < 0) {
        puts("power: cannot find the FADT");
        return GUEST_EXIT_FAIL;
    }
    if (cmdline_value_is(mode, "poweroff"))
        return power_off();
    if (cmdline_value_is(mode, "acpi-reset"))
        return acpi_reset();
    if (cmdline_value_is(mode, "wait-power-button"))
        return wait_for_power_button();
    puts("power: unknown mode");
    return GUEST_EXIT_FAIL;
}
