/* The fixed platform every kiln VM has: where its legacy devices, ACPI power registers,
 * power button and virtio-mmio slots live, and which interrupts they use (docs/platform.md). */
#ifndef KILN_PLATFORM_H
#define KILN_PLATFORM_H

/* ACPI tables live in the BIOS area, where a legacy RSDP scan also finds them. */
#define PLATFORM_ACPI_START 0xe0000ULL /* the RSDP, 16-byte aligned; other tables follow */
#define PLATFORM_ACPI_END   0xef000ULL /* the VM generation ID's page follows */

/* The VM generation ID (docs/acpi.md): 16 random bytes that kiln replaces at every snapshot
 * restore, in the last page of the ACPI area (reserved in the e820 map, so never guest RAM);
 * the DSDT's VGEN device gives the address, and a pulse on PLATFORM_VMGENID_GSI, one of the
 * GED's two interrupts, makes the guest's ACPI code Notify(VGEN, 0x80). */
#define PLATFORM_VMGENID_ADDR 0xef000ULL
#define PLATFORM_VMGENID_SIZE 16

/* Intel MP table (MP spec 1.4) for kernels booted without ACPI (acpi=off, or built without
 * it): the floating pointer where Linux scans (the last KiB of base memory), the config table
 * in the BIOS area. Kernels with ACPI use the MADT instead and ignore it. */
#define PLATFORM_MP_FLOATING_POINTER 0x9fc00ULL
#define PLATFORM_MP_CONFIG_TABLE     0xf0000ULL
#define PLATFORM_MP_CONFIG_END       PLATFORM_RESET_VECTOR
#define PLATFORM_ACPI_OEM_ID         "KILN  "   /* 6 bytes */
#define PLATFORM_ACPI_OEM_TABLE_ID   "KILNVM  " /* 8 bytes */
#define PLATFORM_ACPI_CREATOR_ID     "KILN"

/* The x86 reset vector (F000:FFF0), where a PC's firmware starts. kiln has no firmware; a
 * guest that jumps here to restart (Linux's "BIOS" reboot, its choice on hardware-reduced
 * ACPI without EFI) finds `out 0x64, 0xfe` there: the i8042 reset, the same in every mode. */
#define PLATFORM_RESET_VECTOR      0xffff0ULL
#define PLATFORM_RESET_VECTOR_SIZE 16

/* Interrupt controllers (the in-kernel KVM models). */
#define PLATFORM_LAPIC_ADDR  0xfee00000U
#define PLATFORM_IOAPIC_ADDR 0xfec00000U
#define PLATFORM_IOAPIC_ID   0
#define PLATFORM_IOAPIC_PINS 24
/* The PIT's ISA IRQ 0 arrives on IOAPIC pin 2, as on PC chipsets: the MADT's interrupt source
 * override, the MP table and the GSI routing kiln gives KVM (irq_routing.c) all say so. */
#define PLATFORM_PIT_IOAPIC_PIN 2

/* Legacy devices. */
#define PLATFORM_COM1_PORT 0x3f8
#define PLATFORM_COM1_IRQ  4
#define PLATFORM_RTC_PORT  0x70 /* index at 0x70, data at 0x71 */
#define PLATFORM_RTC_IRQ   8
/* The CMOS byte holding the century, which the FADT's CENTURY field points the guest to. */
#define PLATFORM_RTC_CENTURY_INDEX 0x32

/* Hardware-reduced ACPI power registers (FADT SLEEP_CONTROL_REG, SLEEP_STATUS_REG,
 * RESET_REG), one byte each in I/O space. */
#define PLATFORM_PM_PORT           0x600
#define PLATFORM_PM_SLEEP_CONTROL  (PLATFORM_PM_PORT + 0)
#define PLATFORM_PM_SLEEP_STATUS   (PLATFORM_PM_PORT + 1)
#define PLATFORM_PM_RESET          (PLATFORM_PM_PORT + 2)
#define PLATFORM_PM_PORT_COUNT     3
#define PLATFORM_PM_RESET_VALUE    0x01
#define PLATFORM_SLEEP_TYPE_S5     5 /* the value \_S5 gives; written as SLP_TYP */
#define PLATFORM_SLEEP_TYPE_SHIFT  2 /* SLP_TYPx is bits 4:2 of the sleep control register */
#define PLATFORM_SLEEP_TYPE_MASK   0x1c
#define PLATFORM_SLEEP_ENABLE      0x20 /* SLP_EN, bit 5 */
#define PLATFORM_SLEEP_STATUS_WAKE 0x80 /* WAK_STS, bit 7 */

/* Generic Event Device (ACPI0013): two edge interrupts, and its _EVT method tells them apart
 * by GSI: PLATFORM_GED_GSI notifies the power button (PNP0C0C), how SIGTERM asks the guest to
 * shut down; PLATFORM_VMGENID_GSI notifies the VM generation ID device after a restore. */
#define PLATFORM_GED_GSI     9
#define PLATFORM_VMGENID_GSI 10

/* virtio-mmio devices: fixed 4 KiB slots in the MMIO hole, one IOAPIC pin each (edge,
 * active high), described in the DSDT or on the kernel command line, never both. */
#define PLATFORM_VIRTIO_MMIO_BASE      0xd0000000ULL
#define PLATFORM_VIRTIO_MMIO_SLOT_SIZE 0x1000ULL
#define PLATFORM_VIRTIO_MMIO_MAX       8
#define PLATFORM_VIRTIO_GSI_BASE       16 /* slot i uses GSI 16 + i, up to 23 */

#endif
