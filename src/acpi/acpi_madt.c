/* The MADT: one Local APIC per vCPU, KVM's in-kernel IOAPIC, the PIT's interrupt source
 * override and the LINT1 NMI wiring (ACPI 6.5 §5.2.12). */
#include <string.h>

#include "kiln/acpi/acpi.h"
#include "kiln/vm/platform.h"

#define MADT_REVISION    6         /* ACPI 6.5 */
#define MADT_PCAT_COMPAT (1u << 0) /* dual 8259s present (KVM's in-kernel PIC) */

/* Interrupt Controller Structure types and lengths, §5.2.12 table 5.21. */
#define MADT_LOCAL_APIC          0 /* §5.2.12.2 */
#define MADT_LOCAL_APIC_LEN      8
#define MADT_IO_APIC             1 /* §5.2.12.3 */
#define MADT_IO_APIC_LEN         12
#define MADT_SOURCE_OVERRIDE     2 /* §5.2.12.5 */
#define MADT_SOURCE_OVERRIDE_LEN 10
#define MADT_LOCAL_APIC_NMI      4 /* §5.2.12.7 */
#define MADT_LOCAL_APIC_NMI_LEN  6

#define LAPIC_ENABLED      (1u << 0)
#define ISA_BUS            0
#define PIT_ISA_IRQ        0
#define ALL_PROCESSORS_UID 0xff /* Local APIC NMI: applies to every processor */
/* MPS INTI flags (§5.2.12.5 table 5.26): polarity bits 1:0, trigger mode bits 3:2. */
#define MPS_INTI_CONFORMS    0x0
#define MPS_INTI_ACTIVE_HIGH 0x1
#define MPS_INTI_EDGE        (0x1 << 2)
#define LINT1                1 /* vCPU setup programs LINT1 as NMI (virtual wire) */

int acpi_build_madt(const struct acpi_config *cfg, struct aml_buf *out, struct error *err)
{
    aml_buf_init(out, 0);
    int r = acpi_config_check(cfg, err);
    if (r < 0)
        return r;
    acpi_table_header(out, "APIC", MADT_REVISION);
    aml_append_le(out, PLATFORM_LAPIC_ADDR, 4);
    aml_append_le(out, MADT_PCAT_COMPAT, 4);

    /* ACPI processor UID = APIC ID = vCPU index, matching CPUID's APIC IDs (vcpu/cpuid.c). */
    for (unsigned i = 0; i < cfg->ncpus; i++) {
        aml_append_byte(out, MADT_LOCAL_APIC);
        aml_append_byte(out, MADT_LOCAL_APIC_LEN);
        aml_append_byte(out, (uint8_t)i);
        aml_append_byte(out, (uint8_t)i);
        aml_append_le(out, LAPIC_ENABLED, 4);
    }

    aml_append_byte(out, MADT_IO_APIC);
    aml_append_byte(out, MADT_IO_APIC_LEN);
    aml_append_byte(out, PLATFORM_IOAPIC_ID);
    aml_append_byte(out, 0); /* reserved */
    aml_append_le(out, PLATFORM_IOAPIC_ADDR, 4);
    aml_append_le(out, 0, 4); /* its pins are GSIs 0..PLATFORM_IOAPIC_PINS-1 */

    /* ISA IRQ 0 (PIT) arrives on GSI 2; every other ISA IRQ is identity-mapped. */
    aml_append_byte(out, MADT_SOURCE_OVERRIDE);
    aml_append_byte(out, MADT_SOURCE_OVERRIDE_LEN);
    aml_append_byte(out, ISA_BUS);
    aml_append_byte(out, PIT_ISA_IRQ);
    aml_append_le(out, ACPI_PIT_GSI, 4);
    aml_append_le(out, MPS_INTI_CONFORMS, 2); /* ISA: edge, active high */

    aml_append_byte(out, MADT_LOCAL_APIC_NMI);
    aml_append_byte(out, MADT_LOCAL_APIC_NMI_LEN);
    aml_append_byte(out, ALL_PROCESSORS_UID);
    aml_append_le(out, MPS_INTI_EDGE | MPS_INTI_ACTIVE_HIGH, 2);
    aml_append_byte(out, LINT1);

    acpi_table_finish(out);
    return out->error ? error_fmt(err, out->error, "ACPI: cannot build the MADT: %s",
                                  strerror(-out->error))
                      : 0;
}
