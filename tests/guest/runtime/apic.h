/* Guest kit interrupt controllers: the xAPIC local APIC (IDs, enable, EOI, INIT/SIPI), the
 * I/O APIC's redirection table, masking the 8259s, and starting application processors. */
#ifndef KILN_GUEST_APIC_H
#define KILN_GUEST_APIC_H

#include "kiln/vm/platform.h" /* #defines only: safe in freestanding C and in assembly */

/* Where an AP starts: the SIPI vector names a 4 KiB page below 1 MiB (vector = page number)
 * and the AP begins there in real mode. 0x10000 is RAM that kiln's boot layout leaves free
 * (its boot structures are at 0x500-0x8fff, the command line at 0x20000; docs/platform.md)
 * and QEMU's PVH boot does not use either. */
#define AP_TRAMPOLINE_PADDR 0x10000

#ifndef __ASSEMBLER__
#include <stddef.h>
#include <stdint.h>

/* Local APIC registers (xAPIC MMIO, SDM vol. 3 table 11-1), offsets from its base. */
#define LAPIC_REG_ID     0x020
#define LAPIC_REG_EOI    0x0b0
#define LAPIC_REG_SVR    0x0f0
#define LAPIC_REG_ICR_LO 0x300
#define LAPIC_REG_ICR_HI 0x310
#define LAPIC_SVR_ENABLE 0x100

static inline uint32_t lapic_read(unsigned reg)
{
    return *(volatile uint32_t *)(uintptr_t)(PLATFORM_LAPIC_ADDR + reg);
}

static inline void lapic_write(unsigned reg, uint32_t value)
{
    *(volatile uint32_t *)(uintptr_t)(PLATFORM_LAPIC_ADDR + reg) = value;
}

/* This CPU's APIC ID from the local APIC's ID register (bits 31:24 in xAPIC mode). */
unsigned lapic_id(void);
/* This CPU's initial APIC ID from CPUID leaf 1 (EBX bits 31:24). */
unsigned cpuid_apic_id(void);
/* Software-enables this CPU's local APIC with the given spurious-interrupt vector. */
void lapic_enable(uint8_t spurious_vector);
void lapic_eoi(void);
/* INIT, then Startup with the page of AP_TRAMPOLINE_PADDR, to one APIC ID. 0, or -1 when the
 * ICR still shows "send pending" after a bounded wait. */
int lapic_send_init(unsigned apic_id);
int lapic_send_startup(unsigned apic_id);

/* Routes I/O APIC pin `pin` (GSI minus the I/O APIC's GSI base) to `vector` on the CPU with
 * APIC ID `dest`: fixed delivery, physical destination, edge-triggered, active high,
 * unmasked. */
void ioapic_route_edge(uint32_t ioapic_addr, unsigned pin, uint8_t vector, unsigned dest);

/* Masks every 8259 input, so nothing arrives through LINT0's virtual wire once interrupts
 * are enabled (an unprogrammed 8259 would deliver on vectors 0-15, the exception vectors). */
void pic_mask_all(void);

/* Makes APs startable: copies the real-mode trampoline to AP_TRAMPOLINE_PADDR and records
 * what it needs: this CPU's page tables (CR3), GDT and IDT, the stacks (nstacks of stack_size
 * bytes each, 16-byte aligned; an AP takes the next free one) and the function every AP
 * calls in long mode with interrupts disabled. An AP that finds no free stack, or whose
 * function returns, halts with interrupts disabled forever. Call before the first SIPI. */
void ap_boot_prepare(void (*entry)(void), void *stacks, size_t stack_size, unsigned nstacks);
#endif

#endif
