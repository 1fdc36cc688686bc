/* Guest kit interrupt controllers: local APIC and I/O APIC register access, the INIT/SIPI
 * sequence, the 8259 mask, and the C side of AP start-up (see ap_trampoline.S). */
#include "apic.h"
#include "guest.h"

/* ICR (SDM vol. 3 §11.6.1): delivery mode bits 10:8, level bit 14, status bit 12. */
#define ICR_INIT         0x00000500
#define ICR_STARTUP      0x00000600
#define ICR_LEVEL_ASSERT 0x00004000
#define ICR_SEND_PENDING 0x00001000
#define ICR_POLL_LIMIT   1000 /* KVM's APIC never shows "pending"; this bounds a broken one */

/* I/O APIC (82093AA datasheet): an index register and a data window. */
#define IOAPIC_REGSEL       0x00
#define IOAPIC_WINDOW       0x10
#define IOAPIC_REDTBL(pin)  (0x10 + 2 * (pin))
#define IOAPIC_DEST_SHIFT   24 /* in the entry's high dword */
#define IOAPIC_MASKED       0x10000
#define PIC_MASTER_DATA     0x21
#define PIC_SLAVE_DATA      0xa1
#define PIC_ALL_MASKED      0xff
#define CPUID_APIC_ID_SHIFT 24

/* Shared with ap_trampoline.S: the blob copied below 1 MiB, the slot in it that holds CR3,
 * and what the 64-bit stub reads once the AP is in long mode. */
extern const uint8_t ap_trampoline_start[];
extern const uint8_t ap_trampoline_end[];
extern const uint8_t ap_trampoline_cr3[];

struct __attribute__((packed)) descriptor_table {
    uint16_t limit;
    uint64_t base;
};

extern struct descriptor_table ap_boot_gdtr;
extern struct descriptor_table ap_boot_idtr;
extern void (*ap_boot_entry)(void);
extern uint64_t ap_boot_stacks;
extern uint64_t ap_boot_stack_size;
extern uint32_t ap_boot_nstacks;

unsigned lapic_id(void)
{
    return lapic_read(LAPIC_REG_ID) >> 24;
}

unsigned cpuid_apic_id(void)
{
    uint32_t a, b, c, d;
    cpuid(1, &a, &b, &c, &d);
    return b >> CPUID_APIC_ID_SHIFT;
}

void lapic_enable(uint8_t spurious_vector)
{
    lapic_write(LAPIC_REG_SVR, LAPIC_SVR_ENABLE | spurious_vector);
}

void lapic_eoi(void)
{
    lapic_write(LAPIC_REG_EOI, 0);
}

static int send_ipi(unsigned apic_id, uint32_t icr_low)
{
    /* Writing the low half sends, so the destination goes in first. */
    lapic_write(LAPIC_REG_ICR_HI, apic_id << 24);
    lapic_write(LAPIC_REG_ICR_LO, icr_low);
    for (int i = 0; i < ICR_POLL_LIMIT; i++) {
        if (!(lapic_read(LAPIC_REG_ICR_LO) & ICR_SEND_PENDING))
            return 0;
    }
    return -1;
}

/* No INIT de-assert: only the 82489DX needed it, and KVM ignores it. */
int lapic_send_init(unsigned apic_id)
{
    return send_ipi(apic_id, ICR_INIT | ICR_LEVEL_ASSERT);
}

int lapic_send_startup(unsigned apic_id)
{
    return send_ipi(apic_id, ICR_STARTUP | ICR_LEVEL_ASSERT | (AP_TRAMPOLINE_PADDR >> 12));
}

void ioapic_route_edge(uint32_t ioapic_addr, unsigned pin, uint8_t vector, unsigned dest)
{
    volatile uint32_t *regsel = (volatile uint32_t *)(uintptr_t)(ioapic_addr + IOAPIC_REGSEL);
    volatile uint32_t *window = (volatile uint32_t *)(uintptr_t)(ioapic_addr + IOAPIC_WINDOW);
    /* Destination first, so the entry is never unmasked with a stale destination. Fixed
     * delivery, physical mode, active high and edge are all zero bits. */
    *regsel = IOAPIC_REDTBL(pin) + 1;
    *window = dest << IOAPIC_DEST_SHIFT;
    *regsel = IOAPIC_REDTBL(pin);
    *window = vector;
}

void pic_mask_all(void)
{
    outb(PIC_MASTER_DATA, PIC_ALL_MASKED);
    outb(PIC_SLAVE_DATA, PIC_ALL_MASKED);
}

void ap_boot_prepare(void (*entry)(void), void *stacks, size_t stack_size, unsigned nstacks)
{
    size_t len = (size_t)(ap_trampoline_end - ap_trampoline_start);
    uint8_t *page = (uint8_t *)(uintptr_t)AP_TRAMPOLINE_PADDR;
    memcpy(page, ap_trampoline_start, len);
    /* The kit's page tables live in its image below 2 MiB, so CR3 fits the 32-bit slot the
     * trampoline loads in protected mode. */
    uint64_t cr3;
    __asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
    uint32_t cr3_low = (uint32_t)cr3;
    memcpy(page + (ap_trampoline_cr3 - ap_trampoline_start), &cr3_low, sizeof(cr3_low));
    __asm__ volatile("sgdt %0" : "=m"(ap_boot_gdtr));
    __asm__ volatile("sidt %0" : "=m"(ap_boot_idtr));
    ap_boot_entry = entry;
    ap_boot_stacks = (uint64_t)(uintptr_t)stacks;
    ap_boot_stack_size = stack_size;
    ap_boot_nstacks = nstacks;
    /* Everything above is plain stores; the SIPI that follows is an MMIO write, which the
     * CPU does not reorder before them (x86 stores are ordered), but the compiler might. */
    __asm__ volatile("" ::: "memory");
}
