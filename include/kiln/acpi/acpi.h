/* ACPI tables for a kiln VM (RSDP, XSDT, FADT, MADT, DSDT) built from include/kiln/platform.h
 * and a small per-VM config into guest RAM from PLATFORM_ACPI_START; the VM generation ID. */
#ifndef KILN_ACPI_H
#define KILN_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/acpi/aml.h"
#include "kiln/util/error.h"
#include "kiln/vm/guest_mem.h"
#include "kiln/vm/platform.h"

/* xAPIC IDs are 8 bits and 0xff is the broadcast ID; the MADT's processor UID 0xff means
 * "all processors" in the Local APIC NMI entry, so 0..253 keeps both unambiguous. */
#define ACPI_MAX_CPUS 254

/* KVM's in-kernel PIT (ISA IRQ 0) is wired to IOAPIC pin 2, as on PC chipsets; the MADT
 * says so with an Interrupt Source Override. */
#define ACPI_PIT_GSI PLATFORM_PIT_IOAPIC_PIN

/* Fixed sizes (ACPI 6.5 §5.2.5.3 RSDP, §5.2.6 header, §5.2.9 FADT). */
#define ACPI_RSDP_LEN         36
#define ACPI_RSDP_V1_LEN      20 /* what the first checksum covers */
#define ACPI_TABLE_HEADER_LEN 36
#define ACPI_FADT_LEN         276
#define ACPI_TABLE_ALIGN      16 /* every table starts 16-byte aligned (the RSDP must) */

struct acpi_virtio_device {
    uint64_t base; /* MMIO window; base + size must lie below 4 GiB (Memory32Fixed) */
    uint64_t size;
    uint32_t gsi; /* IOAPIC pin, edge / active high */
};

struct acpi_config {
    unsigned ncpus;                          /* LAPIC IDs 0..ncpus-1, all enabled */
    const struct acpi_virtio_device *virtio; /* described in the DSDT as LNRO0005 devices */
    size_t nvirtio;
    bool vmgenid; /* the VM generation ID device (VGEN) and the GED's PLATFORM_VMGENID_GSI */
};

/* Where acpi_build() put each table (all guest-physical). */
struct acpi_layout {
    uint64_t rsdp, xsdt, fadt, madt, dsdt;
    uint64_t end; /* first byte after the last table */
};

/*
 * Builds all tables into guest RAM from PLATFORM_ACPI_START; *rsdp_gpa = PLATFORM_ACPI_START.
 * Fails (one-line error) if the config is invalid or the tables don't fit below
 * PLATFORM_ACPI_END. layout may be NULL.
 */
int acpi_build(const struct guest_mem *mem, const struct acpi_config *cfg, uint64_t *rsdp_gpa,
               struct error *err);
int acpi_build_layout(const struct guest_mem *mem, const struct acpi_config *cfg,
                      struct acpi_layout *layout, struct error *err);

/* Checks ncpus (1..ACPI_MAX_CPUS) and every virtio device (count, window, GSI). */
int acpi_config_check(const struct acpi_config *cfg, struct error *err);

/*
 * One table each, into a heap buffer: `out` is initialised by the call and must be released
 * with aml_buf_free() whether or not the call succeeded. Each returns 0 or a negative errno
 * with a one-line message. Addresses are guest-physical and must be below 4 GiB where the
 * table also has a 32-bit field for them (the DSDT).
 */
int acpi_build_rsdp(uint64_t xsdt_gpa, struct aml_buf *out, struct error *err);
int acpi_build_xsdt(const uint64_t *table_gpas, size_t ntables, struct aml_buf *out,
                    struct error *err);
int acpi_build_fadt(uint64_t dsdt_gpa, struct aml_buf *out, struct error *err);
int acpi_build_madt(const struct acpi_config *cfg, struct aml_buf *out, struct error *err);
int acpi_build_dsdt(const struct acpi_config *cfg, struct aml_buf *out, struct error *err);

/*
 * The VM generation ID (src/acpi/acpi_vmgenid.c): 16 bytes at PLATFORM_VMGENID_ADDR that the
 * DSDT's VGEN device points the guest to. acpi_vmgenid_new fills id from getrandom();
 * acpi_vmgenid_write puts id into guest RAM; acpi_vmgenid_renew does both (at boot, and at a
 * restore before the guest is told). Each returns 0 or a negative errno with one line.
 * acpi_vmgenid_format writes id as 32 lower-case hex digits and a NUL, byte 0 first.
 */
#define ACPI_VMGENID_SIZE      PLATFORM_VMGENID_SIZE
#define ACPI_VMGENID_TEXT_SIZE (2 * ACPI_VMGENID_SIZE + 1)
int acpi_vmgenid_new(uint8_t id[ACPI_VMGENID_SIZE], struct error *err);
int acpi_vmgenid_write(const struct guest_mem *mem, const uint8_t id[ACPI_VMGENID_SIZE],
                       struct error *err);
int acpi_vmgenid_renew(const struct guest_mem *mem, uint8_t id[ACPI_VMGENID_SIZE],
                       struct error *err);
void acpi_vmgenid_format(const uint8_t id[ACPI_VMGENID_SIZE], char text[ACPI_VMGENID_TEXT_SIZE]);

/* The byte that makes len bytes (with it in place of a zero) sum to 0 mod 256. */
uint8_t acpi_checksum(const void *data, size_t len);

/* Appends a 36-byte System Description Table Header (§5.2.6) with kiln's OEM fields and the
 * length and checksum left zero; acpi_table_finish() fills both once the table is complete.
 * The header must be at offset 0 of b. */
void acpi_table_header(struct aml_buf *b, const char signature[4], uint8_t revision);
void acpi_table_finish(struct aml_buf *b);

#endif
