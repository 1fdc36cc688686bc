/* The DSDT: \_S5 for power-off and the \_SB devices a guest can only find through ACPI: COM1,
 * the RTC, the power button, the VM generation ID, the Generic Event Device, the virtio slots. */
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
/* Microsoft's "Virtual Machine Generation ID" spec: the ID changed. */
#define NOTIFY_GENERATION_CHANGED 0x80

/* _STA: present, enabled, shown in the UI, functioning (§6.3.7). */
#define STA_PRESENT_AND_WORKING 0x0f

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

/* The VM generation ID device (Microsoft's "Virtual Machine Generation ID" spec): ADDR gives
 * the ID's guest-physical address as a package of two DWORDs, low then high. The OS matches
 * the _CID the spec names; Linux's vmgenid driver lists it as "VM_GEN_COUNTER", and ACPICA
 * upper-cases _HID and _CID strings before drivers compare them. The _HID is kiln's own: a
 * device needs one, and "VM_Gen_Counter" is not a valid hardware ID. */
static void dsdt_vmgenid(struct aml_buf *b)
{
    size_t dev = aml_device_begin(b, "VGEN");
    aml_name_string(b, "_HID", "KILN0001");
    aml_name_string(b, "_CID", "VM_Gen_Counter");
    aml_name_integer(b, "_STA", STA_PRESENT_AND_WORKING);
    size_t addr = aml_method_begin(b, "ADDR", 0, false);
    aml_return(b);
    size_t pkg = aml_package_begin(b, 2);
    aml_integer(b, PLATFORM_VMGENID_ADDR & 0xffffffffu);
    aml_integer(b, PLATFORM_VMGENID_ADDR >> 32);
    aml_end(b, pkg);
    aml_end(b, addr);
    aml_end(b, dev);
}

/* If (LEqual (Arg0, gsi)) { Notify (target, value) } */
static void dsdt_event_case(struct aml_buf *b, unsigned gsi, const char *target, uint64_t value)
{
    size_t if_mark = aml_if_begin(b);
    aml_lequal(b);
    aml_arg(b, 0);
    aml_integer(b, gsi);
    aml_notify(b, target, value);
    aml_end(b, if_mark);
}

/* Generic Event Device (§5.6.9): hardware-reduced ACPI has no SCI/GPEs, so platform events
 * arrive as this device's interrupts. Each is its own Interrupt descriptor, because Linux's
 * GED driver takes only the first interrupt of a descriptor, and OSPM runs _EVT with the
 * GSI that fired as Arg0. */
static void dsdt_ged(struct aml_buf *b, bool vmgenid)
{
    size_t dev = aml_device_begin(b, "GED0");
    aml_name_string(b, "_HID", "ACPI0013");
    aml_name_integer(b, "_UID", 0);
    aml_name(b, "_CRS");
    size_t crs = aml_resource_template_begin(b);
    aml_res_interrupt(b, INT_EDGE_HIGH_EXCLUSIVE, PLATFORM_GED_GSI);
    if (vmgenid)
        aml_res_interrupt(b, INT_EDGE_HIGH_EXCLUSIVE, PLATFORM_VMGENID_GSI);
    aml_resource_template_end(b, crs);
    size_t evt = aml_method_begin(b, "_EVT", 1, false);
    dsdt_event_case(b, PLATFORM_GED_GSI, "\\_SB.PWRB", NOTIFY_BUTTON_PRESSED);
    if (vmgenid)
        dsdt_event_case(b, PLATFORM_VMGENID_GSI, "\\_SB.VGEN", NOTIFY_GENERATION_CHANGED);
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
    if (cfg->vmgenid)
        dsdt_vmgenid(out);
    dsdt_ged(out, cfg->vmgenid);
    for (size_t i = 0; i < cfg->nvirtio; i++)
        dsdt_virtio(out, i, &cfg->virtio[i]);
    aml_end(out, sb);
    acpi_table_finish(out);
    return out->error ? error_fmt(err, out->error, "ACPI: cannot build the DSDT: %s",
                                  strerror(-out->error))
                      : 0;
}
