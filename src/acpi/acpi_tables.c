/* The fixed-shape tables: RSDP (where the OS starts), XSDT (the list of tables) and the
 * hardware-reduced FADT with kiln's power registers (ACPI 6.5 §5.2.5, §5.2.8, §5.2.9). */
#include <errno.h>
#include <string.h>

#include "kiln/acpi/acpi.h"
#include "kiln/vm/platform.h"

/* RSDP, §5.2.5.3 table 5.3. */
#define RSDP_SIGNATURE    "RSD PTR "
#define RSDP_REVISION     2 /* ACPI 2.0+: has Length, XsdtAddress and the extended checksum */
#define RSDP_CHECKSUM     8
#define RSDP_EXT_CHECKSUM 32

#define XSDT_REVISION 1 /* §5.2.8 */

/* FADT, §5.2.9 table 5.9: field offsets from the start of the table. */
#define FADT_REVISION       6
#define FADT_MINOR_REVISION 5 /* ACPI 6.5 */
enum {
    FADT_DSDT = 40,
    FADT_PM_PROFILE = 45,
    FADT_SCI_INT = 46,
    FADT_CENTURY = 108,
    FADT_IAPC_BOOT_ARCH = 109,
    FADT_FLAGS = 112,
    FADT_RESET_REG = 116,
    FADT_RESET_VALUE = 128,
    FADT_MINOR_VERSION = 131,
    FADT_X_DSDT = 140,
    FADT_SLEEP_CONTROL_REG = 244,
    FADT_SLEEP_STATUS_REG = 256,
    FADT_HYPERVISOR_VENDOR = 268,
};

/* Preferred_PM_Profile: 0 = Unspecified. A VM has no chassis form factor, and the profile
 * only steers OSPM power policy for hardware (P-states, HWP) a kiln guest does not have. */
#define FADT_PM_PROFILE_UNSPECIFIED 0

/* FADT Flags, §5.2.9.3 table 5.10. */
#define FADT_F_PWR_BUTTON      (1u << 4)  /* power button is not a fixed feature */
#define FADT_F_SLP_BUTTON      (1u << 5)  /* no fixed-feature sleep button */
#define FADT_F_RESET_REG_SUP   (1u << 10) /* RESET_REG/RESET_VALUE are valid */
#define FADT_F_HW_REDUCED_ACPI (1u << 20) /* no PM1/GPE blocks, no SCI, no FACS needed */

/* IA-PC Boot Architecture Flags, §5.2.9.3 table 5.11. "8042" (bit 1) stays clear: there is
 * no PS/2 controller for Linux to probe (kiln's i8042 is only a reset port). "CMOS RTC Not
 * Present" (bit 5) stays clear: the RTC at 0x70 is real. */
#define FADT_BOOT_VGA_NOT_PRESENT (1u << 2)
#define FADT_BOOT_MSI_UNSUPPORTED (1u << 3) /* no PCI, so nothing to enable MSI on */

/* Generic Address Structure, §5.2.3.2 table 5.1. */
#define GAS_SYSTEM_IO   1
#define GAS_ACCESS_BYTE 1

static void put_le(uint8_t *p, uint64_t value, unsigned nbytes)
{
    for (unsigned i = 0; i < nbytes; i++)
        p[i] = (uint8_t)(value >> (8 * i));
}

/* A one-byte register in I/O space: bit width 8, bit offset 0, byte access. */
static void put_gas_io8(uint8_t *p, uint16_t port)
{
    p[0] = GAS_SYSTEM_IO;
    p[1] = 8;
    p[2] = 0;
    p[3] = GAS_ACCESS_BYTE;
    put_le(p + 4, port, 8);
}

int acpi_build_rsdp(uint64_t xsdt_gpa, struct aml_buf *out, struct error *err)
{
    uint8_t rsdp[ACPI_RSDP_LEN] = {0};
    memcpy(rsdp, RSDP_SIGNATURE, 8);
    memcpy(rsdp + 9, PLATFORM_ACPI_OEM_ID, 6);
    rsdp[15] = RSDP_REVISION;
    put_le(rsdp + 16, 0, 4); /* RsdtAddress: no RSDT, the XSDT is authoritative */
    put_le(rsdp + 20, ACPI_RSDP_LEN, 4);
    put_le(rsdp + 24, xsdt_gpa, 8);
    rsdp[RSDP_CHECKSUM] = acpi_checksum(rsdp, ACPI_RSDP_V1_LEN);
    rsdp[RSDP_EXT_CHECKSUM] = acpi_checksum(rsdp, ACPI_RSDP_LEN);

    aml_buf_init(out, 0);
    aml_append_bytes(out, rsdp, sizeof(rsdp));
    return out->error ? error_fmt(err, out->error, "ACPI: cannot build the RSDP: %s",
                                  strerror(-out->error))
                      : 0;
}

int acpi_build_xsdt(const uint64_t *table_gpas, size_t ntables, struct aml_buf *out,
                    struct error *err)
{
    aml_buf_init(out, 0);
    acpi_table_header(out, "XSDT", XSDT_REVISION);
    for (size_t i = 0; i < ntables; i++)
        aml_append_le(out, table_gpas[i], 8);
    acpi_table_finish(out);
    return out->error ? error_fmt(err, out->error, "ACPI: cannot build the XSDT: %s",
                                  strerror(-out->error))
                      : 0;
}

int acpi_build_fadt(uint64_t dsdt_gpa, struct aml_buf *out, struct error *err)
{
    aml_buf_init(out, 0);
    /* The 32-bit DSDT field is filled too (same value) for OSes that only read it. */
    if (dsdt_gpa == 0 || dsdt_gpa > UINT32_MAX)
        return error_fmt(err, -EINVAL, "ACPI: DSDT address 0x%llx is not a 32-bit address",
                         (unsigned long long)dsdt_gpa);
    acpi_table_header(out, "FACP", FADT_REVISION);
    static const uint8_t zeros[ACPI_FADT_LEN - ACPI_TABLE_HEADER_LEN];
    aml_append_bytes(out, zeros, sizeof(zeros));
    if (out->error)
        return error_fmt(err, out->error, "ACPI: cannot build the FADT: %s", strerror(-out->error));

    /* FIRMWARE_CTRL / X_FIRMWARE_CTRL stay 0: a hardware-reduced platform may have no FACS
     * (no global lock, no firmware waking vector). SCI_INT stays 0: there is no SCI. */
    uint8_t *t = out->data;
    put_le(t + FADT_DSDT, dsdt_gpa, 4);
    t[FADT_PM_PROFILE] = FADT_PM_PROFILE_UNSPECIFIED;
    put_le(t + FADT_SCI_INT, 0, 2);
    t[FADT_CENTURY] =
        PLATFORM_RTC_CENTURY_INDEX; /* so the guest reads 20xx, not a guessed century */
    put_le(t + FADT_IAPC_BOOT_ARCH, FADT_BOOT_VGA_NOT_PRESENT | FADT_BOOT_MSI_UNSUPPORTED, 2);
    put_le(t + FADT_FLAGS,
           FADT_F_HW_REDUCED_ACPI | FADT_F_RESET_REG_SUP | FADT_F_PWR_BUTTON | FADT_F_SLP_BUTTON,
           4);
    put_gas_io8(t + FADT_RESET_REG, PLATFORM_PM_RESET);
    t[FADT_RESET_VALUE] = PLATFORM_PM_RESET_VALUE;
    t[FADT_MINOR_VERSION] = FADT_MINOR_REVISION;
    put_le(t + FADT_X_DSDT, dsdt_gpa, 8);
    put_gas_io8(t + FADT_SLEEP_CONTROL_REG, PLATFORM_PM_SLEEP_CONTROL);
    put_gas_io8(t + FADT_SLEEP_STATUS_REG, PLATFORM_PM_SLEEP_STATUS);
    /* Hypervisor Vendor Identity: the vendor's name, zero-padded, no version (§5.2.9). */
    memcpy(t + FADT_HYPERVISOR_VENDOR, PLATFORM_ACPI_CREATOR_ID, 4);

    acpi_table_finish(out);
    return out->error ? error_fmt(err, out->error, "ACPI: cannot build the FADT: %s",
                                  strerror(-out->error))
                      : 0;
}
