/* The Intel MultiProcessor table (MP spec 1.4): CPUs, the ISA bus, the IOAPIC and its pins,
 * for guests that do not use ACPI — where virtio_mmio.device= IRQ numbers equal GSIs. */
#ifndef KILN_MPTABLE_H
#define KILN_MPTABLE_H

#include "kiln/util/error.h"
#include "kiln/vm/guest_mem.h"

#define MPTABLE_IRQS 24 /* IOAPIC pins described, one interrupt entry each (IRQ 2 excepted) */

/* Writes the floating pointer and config table for ncpus vCPUs (APIC IDs 0..ncpus-1) into
 * guest RAM at PLATFORM_MP_*. Returns 0, or -ENOSPC/-EFAULT with err set. */
int mptable_write(const struct guest_mem *mem, unsigned ncpus, struct error *err);

#endif
