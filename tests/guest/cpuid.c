/* cpuid.elf: prints the CPUID feature words a CPU template chooses (leaves 1, 7, 0xD and
 * 0x80000001) on one line, and with `msr=INDEX` that MSR's value. With `wait` on its command
 * line it then waits for the power button, reads the words again (a restored VM's vCPUs
 * answer then), prints them and exits 0. */
#include "runtime/acpi.h"
#include "runtime/apic.h"
#include "runtime/guest.h"

#define POWER_BUTTON_VECTOR 0x40
#define SPURIOUS_VECTOR     0xff

static volatile int power_pressed;

struct interrupt_frame;

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

/* "cpuid: 1.ecx=... 1.edx=... ..." (subleaf 0 of each): what the test compares. Leaf 1 ECX
 * without OSXSAVE (bit 27), which follows the guest's own CR4 rather than the template. */
static void print_words(const char *when)
{
    uint32_t a, b, c, d;
    printf("cpuid: %s", when);
    cpuid(1, &a, &b, &c, &d);
    printf(" 1.ecx=%08x 1.edx=%08x", c & ~(1u << 27), d);
    cpuid(7, &a, &b, &c, &d);
    printf(" 7.eax=%08x 7.ebx=%08x 7.ecx=%08x 7.edx=%08x", a, b, c, d);
    cpuid(0xd, &a, &b, &c, &d);
    printf(" d.eax=%08x d.ecx=%08x", a, c);
    cpuid(0x80000001, &a, &b, &c, &d);
    printf(" 80000001.ecx=%08x 80000001.edx=%08x\n", c, d);
}

static int wait_for_power_button(void)
{
    static struct acpi_madt_info madt;
    if (acpi_read_madt(&madt) < 0 || !madt.have_ioapic || madt.ioapic_gsi_base > PLATFORM_GED_GSI) {
        puts("cpuid: the MADT has no I/O APIC for the power button");
        return GUEST_EXIT_FAIL;
    }
    pic_mask_all();
    idt_set_gate(SPURIOUS_VECTOR, (void (*)(void))(uintptr_t)spurious_interrupt);
    idt_set_gate(POWER_BUTTON_VECTOR, (void (*)(void))(uintptr_t)power_button_interrupt);
    lapic_enable(SPURIOUS_VECTOR);
    ioapic_route_edge(madt.ioapic_addr, PLATFORM_GED_GSI - madt.ioapic_gsi_base,
                      POWER_BUTTON_VECTOR, lapic_id());
    puts("cpuid: waiting for the power button");
    while (!power_pressed)
        __asm__ volatile("sti; hlt; cli" ::: "memory"); /* sti's shadow: no wake-up is lost */
    print_words("after");
    return GUEST_EXIT_PASS;
}

static uint64_t read_msr(uint32_t index)
{
    uint32_t low, high;
    __asm__ volatile("rdmsr" : "=a"(low), "=d"(high) : "c"(index));
    return ((uint64_t)high << 32) | low;
}

int guest_main(void)
{
    print_words("boot");
    uint32_t msr;
    if (cmdline_get_u32("msr", &msr) == 0)
        printf("cpuid: msr 0x%x = 0x%lx\n", msr, read_msr(msr));
    if (cmdline_get("wait"))
        return wait_for_power_button();
    return GUEST_EXIT_PASS;
}
