/* Guest kit ACPI reader: finds the RSDP (start info or legacy scan), walks the XSDT/RSDT to a
 * table by signature, and decodes the MADT and the FADT registers the kit's guests use. */
#ifndef KILN_GUEST_ACPI_H
#define KILN_GUEST_ACPI_H

#include <stdint.h>

/* System description table header (ACPI 6.5 §5.2.6). */
struct acpi_header {
    char signature[4];
    uint32_t length;
    uint8_t revision;
    uint8_t checksum;
    char oem_id[6];
    char oem_table_id[8];
    uint32_t oem_revision;
    uint32_t creator_id;
    uint32_t creator_revision;
} __attribute__((packed));

/* Generic Address Structure (§5.2.3.2): where a register like SLEEP_CONTROL_REG lives. */
struct acpi_gas {
    uint8_t space_id;
    uint8_t bit_width;
    uint8_t bit_offset;
    uint8_t access_size;
    uint64_t address;
} __attribute__((packed));

#define ACPI_GAS_SYSTEM_MEMORY 0
#define ACPI_GAS_SYSTEM_IO     1

/* FADT fields (§5.2.9 table 5.9), as byte offsets from the start of the table. */
#define ACPI_FADT_DSDT              40 /* 32-bit */
#define ACPI_FADT_FLAGS             112
#define ACPI_FADT_RESET_REG         116
#define ACPI_FADT_RESET_VALUE       128
#define ACPI_FADT_SLEEP_CONTROL_REG 244
#define ACPI_FADT_SLEEP_STATUS_REG  256
#define ACPI_FADT_X_DSDT            140 /* 64-bit, used when non-zero */
#define ACPI_FADT_F_RESET_REG_SUP   (1u << 10)
#define ACPI_FADT_F_HW_REDUCED      (1u << 20)

/* What the MADT (§5.2.12) says about interrupt controllers. Processor Local APIC entries
 * (type 0) are listed in table order; disabled ones are kept, with enabled = 0. */
#define ACPI_MAX_CPUS 256
struct acpi_madt_info {
    uint32_t lapic_addr;
    uint32_t flags;
    unsigned ncpus;
    uint8_t apic_id[ACPI_MAX_CPUS];
    uint8_t enabled[ACPI_MAX_CPUS];
    int have_ioapic; /* the first I/O APIC entry (type 1) */
    uint8_t ioapic_id;
    uint32_t ioapic_addr;
    uint32_t ioapic_gsi_base;
};

/* Physical address of a valid RSDP: start_info->rsdp_paddr if set, else a scan of
 * 0xe0000-0xfffff on 16-byte boundaries. 0 (after printing why) if there is none or its
 * checksum is wrong. The result is cached. */
uint64_t acpi_rsdp(void);

/* The table with this 4-character signature, through the XSDT (the RSDT for an ACPI 1.0
 * RSDP); NULL (after printing why) if it is missing, above 4 GiB or fails its checksum. */
const struct acpi_header *acpi_find_table(const char *signature);

/* The DSDT, through the FADT's X_DSDT (or DSDT when that is 0); NULL (after printing why)
 * if there is none or it fails its checksum. */
const struct acpi_header *acpi_find_dsdt(void);

/* Decodes the MADT into *info: 0, or -1 (after printing why). */
int acpi_read_madt(struct acpi_madt_info *info);

/* Reads a GAS out of a table at byte offset, copying it (FADT GASes are unaligned): 0, or -1
 * if the table is too short to hold it. */
int acpi_table_gas(const struct acpi_header *table, unsigned offset, struct acpi_gas *gas);

/* Writes value to the register a GAS names: 8/16/32-bit I/O or memory, the width from
 * access_size (or bit_width when that is 0). 0, or -1 for a space or width the kit does not
 * support. */
int acpi_gas_write(const struct acpi_gas *gas, uint32_t value);

/* "SystemIO", "SystemMemory" or "space N" for messages. */
const char *acpi_space_name(uint8_t space_id);

#endif
