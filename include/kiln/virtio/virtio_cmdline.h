/* Describing virtio-mmio devices on the kernel command line (--device-discovery cmdline), the
 * alternative to LNRO0005 devices in the DSDT; a boot uses one or the other, never both. */
#ifndef KILN_VIRTIO_CMDLINE_H
#define KILN_VIRTIO_CMDLINE_H

#include <stddef.h>

#include "kiln/acpi/acpi.h"

#define VIRTIO_CMDLINE_ACPI_OFF "acpi=off"

/* *out = cmdline with one "virtio_mmio.device=4K@0xd0000000:16" per device and, unless the
 * user set acpi= already, "acpi=off" (so IRQ numbers are GSIs; the guest finds CPUs and the
 * IOAPIC in the MP table) — before a "--" that starts init's arguments. With n == 0 the
 * command line is unchanged. Heap string, caller frees. Returns 0 or -ENOMEM. */
int virtio_cmdline_append(const char *cmdline, const struct acpi_virtio_device *devs, size_t n,
                          char **out);

#endif
