/* Describing virtio-mmio devices on the kernel command line (--device-discovery cmdline), the
 * alternative to LNRO0005 devices in the DSDT; a boot uses one or the other, never both. */
#ifndef KILN_VIRTIO_CMDLINE_H
#define KILN_VIRTIO_CMDLINE_H

#include <stddef.h>

#include "kiln/acpi.h"

/* *out = cmdline followed by one "virtio_mmio.device=4K@0xd0000000:16" per device, separated
 * by spaces (heap string, caller frees). Returns 0 or -ENOMEM. */
int virtio_cmdline_append(const char *cmdline, const struct acpi_virtio_device *devs, size_t n,
                          char **out);

#endif
