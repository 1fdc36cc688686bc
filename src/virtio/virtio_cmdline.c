/* The kernel command-line way to describe virtio-mmio devices (virtio_mmio.device=SIZE@ADDR:IRQ,
 * for kernels built with CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES), used instead of the DSDT. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/virtio/virtio_cmdline.h"

/* The kernel parses SIZE with memparse(), which takes a K suffix. */
static int format_device(char *buf, size_t size, const struct acpi_virtio_device *dev)
{
    if (dev->size % 1024 == 0)
        return snprintf(buf, size, "virtio_mmio.device=%lluK@0x%llx:%u",
                        (unsigned long long)(dev->size / 1024), (unsigned long long)dev->base,
                        dev->gsi);
    return snprintf(buf, size, "virtio_mmio.device=%llu@0x%llx:%u", (unsigned long long)dev->size,
                    (unsigned long long)dev->base, dev->gsi);
}

int virtio_cmdline_append(const char *cmdline, const struct acpi_virtio_device *devs, size_t n,
                          char **out)
{
    size_t len = strlen(cmdline);
    size_t cap = len + 1;
    for (size_t i = 0; i < n; i++)
        cap += 1 + (size_t)format_device(NULL, 0, &devs[i]);
    char *text = malloc(cap);
    if (!text)
        return -ENOMEM;
    memcpy(text, cmdline, len + 1);
    for (size_t i = 0; i < n; i++) {
        if (len > 0)
            text[len++] = ' ';
        len += (size_t)format_device(text + len, cap - len, &devs[i]);
    }
    *out = text;
    return 0;
}
