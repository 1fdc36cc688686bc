/* The kernel command-line way to describe virtio-mmio devices (virtio_mmio.device=SIZE@ADDR:IRQ,
 * for kernels built with CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES), used instead of the DSDT. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "kiln/boot/cmdline.h"
#include "kiln/virtio/virtio_cmdline.h"

#define ENTRY_SIZE 64

/* The kernel parses SIZE with memparse(), which takes a K suffix. */
static void format_device(char *buf, const struct acpi_virtio_device *dev)
{
    if (dev->size % 1024 == 0)
        snprintf(buf, ENTRY_SIZE, "virtio_mmio.device=%lluK@0x%llx:%u",
                 (unsigned long long)(dev->size / 1024), (unsigned long long)dev->base, dev->gsi);
    else
        snprintf(buf, ENTRY_SIZE, "virtio_mmio.device=%llu@0x%llx:%u",
                 (unsigned long long)dev->size, (unsigned long long)dev->base, dev->gsi);
}

int virtio_cmdline_append(const char *cmdline, const struct acpi_virtio_device *devs, size_t n,
                          char **out)
{
    if (n == 0)
        return cmdline_add_options(cmdline, NULL, 0, false, out, NULL);
    char(*entries)[ENTRY_SIZE] = calloc(n, ENTRY_SIZE);
    const char **options = calloc(n, sizeof(*options));
    char *with_devices = NULL;
    int r = -ENOMEM;
    if (entries && options) {
        for (size_t i = 0; i < n; i++) {
            format_device(entries[i], &devs[i]);
            options[i] = entries[i];
        }
        r = cmdline_add_options(cmdline, options, n, false, &with_devices, NULL);
    }
    free(entries);
    free(options);
    if (r < 0)
        return r;
    /* IRQ numbers on the command line are GSIs only without ACPI: a hardware-reduced ACPI
     * kernel has no legacy PIC and numbers its IRQs dynamically (docs/platform.md). */
    static const char *const acpi_off[] = {VIRTIO_CMDLINE_ACPI_OFF};
    r = cmdline_add_options(with_devices, acpi_off, 1, true, out, NULL);
    free(with_devices);
    return r;
}
