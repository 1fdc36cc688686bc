/* The DSDT: \_S5 for power-off and the \_SB devices a guest can only find through ACPI —
 * COM1, the CMOS RTC, the power button, the Generic Event Device and the virtio-mmio slots. */
#include <stdio.h>
#include <string.h>

#include "kiln/acpi/acpi.h"
#include "kiln/vm/platform.h"

/* Compliance revision 2: integers are 64 bits wide (§5.2.11.1). */
#define DSDT_REVISION 2

#define COM1_PORT_COUNT 8 /* the 16550's eight registers */
#define RTC_PORT_COUNT  2 /* index and data */

/* Device-specific notification values, §5.6.6 table 5.168. */
#define NOTIFY_BUTTON_PRESSED 0x80

#define INT_EDGE_HIGH_EXCLUSIVE (AML_INT_CONSUMER | AML_INT_EDGE)

/* Sleep package for S5: {SLP_TYPa, SLP_TYPb}; hardware-reduced ACPI only uses the first,
 * written to SLEEP_CONTROL_REG (§7.4.2). */
static void dsdt_s5(struct aml_buf *b)
{
    aml_name(b, "_S5");
    size_t pkg = aml_package_begin(b, 2);
    aml_integer(b, PLATFORM_SLEEP_TYPE_S5);
    aml_integer(b, 0);
    aml_end(b, pkg);
}

/* An ISA device with one I/O range and one legacy IRQ; uid < 0 leaves _UID out. */
static void dsdt_isa_device(struct aml_buf *b, const char *name, const char *hid, int uid,
                            uint16_t port, uint8_t port_count, uint8_t irq)
{
    size_t dev = aml_device_begin(b, name);
    aml_name_eisaid(b, "_HID", hid);
    if (uid >= 0)
        aml_name_integer(b, "_UID", (uint64_t)uid);
    aml_name(b, "_CRS");
    size_t crs = aml_resource_template_begin(b);
    aml_res_io16(b, port, port, 1, port_count);
    aml_res_irq_noflags(b, irq);
    aml_resource_template_end(b, crs);
    aml_end(b, dev);
}

static void dsdt_com1(struct aml_buf *b)
{
    /* PNP0501: 16550A-compatible COM port */
    dsdt_isa_device(b, "COM1", "PNP0501", 1, PLATFORM_COM1_PORT, COM1_PORT_COUNT,
                    PLATFORM_COM1_IRQ);
}

static void dsdt_rtc(struct aml_buf *b)
{
    /* PNP0B00: AT real-time clock */
    dsdt_isa_device(b, "RTC_", "PNP0B00", -1, PLATFORM_RTC_PORT, RTC_PORT_COUNT, PLATFORM_RTC_IRQ);
}

/* A control-method power button (FADT PWR_BUTTON set): the GED notifies it. */
static void dsdt_power_button(struct aml_buf *b)
{
    size_t dev = aml_device_begin(b, "PWRB");
    aml_name_eisaid(b, "_HID", "PNP0C0C");
    aml_name_integer(b, "_UID", 0);
    aml_end(b, dev);
}

/* Generic Event Device (§5.6.9): hardware-reduced ACPI has no SCI/GPEs, so platform events
 * arrive as this device's interrupt and OSPM runs _EVT with the GSI. */
static void dsdt_ged(struct aml_buf *b)
{
    size_t dev = aml_device_begin(b, "GED0");
    aml_name_string(b, "_HID", "ACPI0013");
    aml_name_integer(b, "_UID", 0);
    aml_name(b, "_CRS");
    size_t crs = aml_resource_template_begin(b);
    aml_res_interrupt(b, INT_EDGE_HIGH_EXCLUSIVE, PLATFORM_GED_GSI);
    aml_resource_template_end(b, crs);
    /* One event source, so no need to look at Arg0: it is always the power button. */
    size_t evt = aml_method_begin(b, "_EVT", 1, false);
    aml_notify(b, "\\_SB.PWRB", NOTIFY_BUTTON_PRESSED);
    aml_end(b, evt);
    aml_end(b, dev);
}

/* LNRO0005 is the ID Linux's virtio_mmio driver matches over ACPI. */
static void dsdt_virtio(struct aml_buf *b, size_t index, const struct acpi_virtio_device *vd)
{
    char name[5];
    snprintf(name, sizeof(name), "VR%02X", (unsigned)(uint8_t)index);
    size_t dev = aml_device_begin(b, name);
    aml_name_string(b, "_HID", "LNRO0005");
    aml_name_integer(b, "_UID", index);
    aml_name(b, "_CRS");
    size_t crs = aml_resource_template_begin(b);
    aml_res_memory32_fixed(b, true, (uint32_t)vd->base, (uint32_t)vd->size);
    aml_res_interrupt(b, INT_EDGE_HIGH_EXCLUSIVE, vd->gsi);
    aml_resource_template_end(b, crs);
    aml_end(b, dev);
}

int acpi_build_dsdt(const struct acpi_config *cfg, struct aml_buf *out, struct error *err)
{
    aml_buf_init(out, 0);
    int r = acpi_config_check(cfg, err);
    if (r < 0)
        return r;
    acpi_table_header(out, "DSDT", DSDT_REVISION);
    dsdt_s5(out);
    size_t sb = aml_scope_begin(out, "\\_SB");
    dsdt_com1(out);
    dsdt_rtc(out);
    dsdt_power_button(out);
    dsdt_ged(out);
    for (size_t i = 0; i < cfg->nvirtio; i++)
        dsdt_virtio(out, i, &cfg->virtio[i]);
    aml_end(out, sb);
    acpi_table_finish(out);
    return out->error ? error_fmt(err, out->error, "ACPI: cannot build the DSDT: %s",
                                  strerror(-out->error))
                      : 0;
}
