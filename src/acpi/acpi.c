/* acpi_build(): checks the config, lays the tables out from PLATFORM_ACPI_START (RSDP, XSDT,
 * FADT, MADT, DSDT, each 16-byte aligned) and copies them into guest RAM in one write. */
#include <errno.h>
#include <string.h>

#include "kiln/acpi/acpi.h"
#include "kiln/vm/platform.h"

#define FOUR_GIB 0x100000000ULL

static uint64_t align_up(uint64_t value)
{
    return (value + ACPI_TABLE_ALIGN - 1) & ~(uint64_t)(ACPI_TABLE_ALIGN - 1);
}

/* Interrupts the platform's own devices already own (edge, exclusive): a virtio slot on one
 * of them would steal or lose interrupts. */
static const char *platform_gsi_owner(uint32_t gsi)
{
    if (gsi == ACPI_PIT_GSI)
        return "the PIT";
    if (gsi == PLATFORM_COM1_IRQ)
        return "COM1";
    if (gsi == PLATFORM_RTC_IRQ)
        return "the RTC";
    if (gsi == PLATFORM_GED_GSI || gsi == PLATFORM_VMGENID_GSI)
        return "the Generic Event Device";
    return NULL;
}

static int check_virtio(const struct acpi_config *cfg, size_t i, struct error *err)
{
    const struct acpi_virtio_device *vd = &cfg->virtio[i];
    if (vd->size == 0 || vd->base >= FOUR_GIB || vd->size > FOUR_GIB - vd->base)
        return error_fmt(err, -EINVAL,
                         "ACPI: virtio device %zu: MMIO window 0x%llx+0x%llx is empty or not "
                         "below 4 GiB",
                         i, (unsigned long long)vd->base, (unsigned long long)vd->size);
    if (vd->gsi >= PLATFORM_IOAPIC_PINS)
        return error_fmt(err, -EINVAL,
                         "ACPI: virtio device %zu: GSI %u is not an IOAPIC pin (0-%d)", i, vd->gsi,
                         PLATFORM_IOAPIC_PINS - 1);
    const char *owner = platform_gsi_owner(vd->gsi);
    if (owner)
        return error_fmt(err, -EINVAL, "ACPI: virtio device %zu: GSI %u is already used by %s", i,
                         vd->gsi, owner);
    for (size_t j = 0; j < i; j++) {
        const struct acpi_virtio_device *other = &cfg->virtio[j];
        if (other->gsi == vd->gsi)
            return error_fmt(err, -EINVAL, "ACPI: virtio devices %zu and %zu both use GSI %u", j, i,
                             vd->gsi);
        if (vd->base < other->base + other->size && other->base < vd->base + vd->size)
            return error_fmt(err, -EINVAL, "ACPI: virtio devices %zu and %zu overlap in MMIO", j,
                             i);
    }
    return 0;
}

int acpi_config_check(const struct acpi_config *cfg, struct error *err)
{
    if (!cfg)
        return error_fmt(err, -EINVAL, "ACPI: no configuration");
    if (cfg->ncpus == 0 || cfg->ncpus > ACPI_MAX_CPUS)
        return error_fmt(err, -EINVAL, "ACPI: %u vCPUs; the MADT describes 1 to %d", cfg->ncpus,
                         ACPI_MAX_CPUS);
    if (cfg->nvirtio > PLATFORM_VIRTIO_MMIO_MAX)
        return error_fmt(err, -EINVAL, "ACPI: %zu virtio devices; the platform has %d slots",
                         cfg->nvirtio, PLATFORM_VIRTIO_MMIO_MAX);
    if (cfg->nvirtio > 0 && !cfg->virtio)
        return error_fmt(err, -EINVAL, "ACPI: %zu virtio devices but no device list", cfg->nvirtio);
    for (size_t i = 0; i < cfg->nvirtio; i++) {
        int r = check_virtio(cfg, i, err);
        if (r < 0)
            return r;
    }
    return 0;
}

struct tables {
    struct aml_buf rsdp, xsdt, fadt, madt, dsdt, image;
};

static void tables_free(struct tables *t)
{
    aml_buf_free(&t->rsdp);
    aml_buf_free(&t->xsdt);
    aml_buf_free(&t->fadt);
    aml_buf_free(&t->madt);
    aml_buf_free(&t->dsdt);
    aml_buf_free(&t->image);
}

/* Builds every table in t; addresses follow from the sizes of the tables before each one. */
static int build_tables(const struct acpi_config *cfg, struct tables *t, struct acpi_layout *l,
                        struct error *err)
{
    int r = acpi_build_madt(cfg, &t->madt, err);
    if (r == 0)
        r = acpi_build_dsdt(cfg, &t->dsdt, err);
    if (r < 0)
        return r;
    l->rsdp = PLATFORM_ACPI_START;
    l->xsdt = align_up(l->rsdp + ACPI_RSDP_LEN);
    l->fadt = align_up(l->xsdt + ACPI_TABLE_HEADER_LEN + 2 * sizeof(uint64_t));
    l->madt = align_up(l->fadt + ACPI_FADT_LEN);
    l->dsdt = align_up(l->madt + t->madt.len);
    l->end = l->dsdt + t->dsdt.len;
    if (l->end > PLATFORM_ACPI_END)
        return error_fmt(err, -ENOSPC,
                         "ACPI: the tables need %llu bytes from 0x%llx but only %llu fit below "
                         "0x%llx",
                         (unsigned long long)(l->end - l->rsdp), (unsigned long long)l->rsdp,
                         (unsigned long long)(PLATFORM_ACPI_END - l->rsdp),
                         (unsigned long long)PLATFORM_ACPI_END);
    const uint64_t entries[] = {l->fadt, l->madt}; /* the DSDT is reached through the FADT */
    r = acpi_build_fadt(l->dsdt, &t->fadt, err);
    if (r == 0)
        r = acpi_build_xsdt(entries, 2, &t->xsdt, err);
    if (r == 0)
        r = acpi_build_rsdp(l->xsdt, &t->rsdp, err);
    return r;
}

/* Copies table into image at its guest address (image starts at the RSDP; gaps stay zero). */
static void place(struct aml_buf *image, const struct aml_buf *table, uint64_t gpa, uint64_t base)
{
    size_t offset = (size_t)(gpa - base);
    while (image->len < offset && !image->error)
        aml_append_byte(image, 0);
    aml_append_bytes(image, table->data, table->len);
}

int acpi_build_layout(const struct guest_mem *mem, const struct acpi_config *cfg,
                      struct acpi_layout *layout, struct error *err)
{
    struct tables t;
    struct acpi_layout l;
    memset(&t, 0, sizeof(t));
    aml_buf_init(&t.image, PLATFORM_ACPI_END - PLATFORM_ACPI_START);
    int r = build_tables(cfg, &t, &l, err);
    if (r < 0)
        goto out;
    place(&t.image, &t.rsdp, l.rsdp, l.rsdp);
    place(&t.image, &t.xsdt, l.xsdt, l.rsdp);
    place(&t.image, &t.fadt, l.fadt, l.rsdp);
    place(&t.image, &t.madt, l.madt, l.rsdp);
    place(&t.image, &t.dsdt, l.dsdt, l.rsdp);
    if (t.image.error) {
        r = error_fmt(err, t.image.error, "ACPI: cannot assemble the tables: %s",
                      strerror(-t.image.error));
        goto out;
    }
    /* One write: guest_mem_write checks the whole range first, so nothing is half-written. */
    if (guest_mem_write(mem, l.rsdp, t.image.data, t.image.len) < 0) {
        r = error_fmt(err, -EFAULT, "ACPI: guest RAM does not cover the tables at 0x%llx-0x%llx",
                      (unsigned long long)l.rsdp, (unsigned long long)l.end - 1);
        goto out;
    }
    if (layout)
        *layout = l;
out:
    tables_free(&t);
    return r;
}

int acpi_build(const struct guest_mem *mem, const struct acpi_config *cfg, uint64_t *rsdp_gpa,
               struct error *err)
{
    struct acpi_layout l;
    int r = acpi_build_layout(mem, cfg, &l, err);
    if (r == 0)
        *rsdp_gpa = l.rsdp;
    return r;
}
