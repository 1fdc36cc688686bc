/* The VM generation ID's page (docs/acpi.md): a fresh random ID from getrandom(), written into
 * guest RAM at PLATFORM_VMGENID_ADDR at every boot and every snapshot restore. */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "kiln/acpi/acpi.h"
#include "kiln/vm/platform.h"

int acpi_vmgenid_new(uint8_t id[ACPI_VMGENID_SIZE], struct error *err)
{
    size_t have = 0;
    while (have < ACPI_VMGENID_SIZE) {
        ssize_t n = getrandom(id + have, ACPI_VMGENID_SIZE - have, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return error_fmt(err, -errno, "VM generation ID: getrandom: %s", strerror(errno));
        have += (size_t)n;
    }
    return 0;
}

int acpi_vmgenid_write(const struct guest_mem *mem, const uint8_t id[ACPI_VMGENID_SIZE],
                       struct error *err)
{
    if (guest_mem_write(mem, PLATFORM_VMGENID_ADDR, id, ACPI_VMGENID_SIZE) < 0)
        return error_fmt(err, -EFAULT, "VM generation ID: guest RAM does not cover 0x%llx",
                         (unsigned long long)PLATFORM_VMGENID_ADDR);
    return 0;
}

int acpi_vmgenid_renew(const struct guest_mem *mem, uint8_t id[ACPI_VMGENID_SIZE],
                       struct error *err)
{
    int r = acpi_vmgenid_new(id, err);
    return r < 0 ? r : acpi_vmgenid_write(mem, id, err);
}

void acpi_vmgenid_format(const uint8_t id[ACPI_VMGENID_SIZE], char text[ACPI_VMGENID_TEXT_SIZE])
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < ACPI_VMGENID_SIZE; i++) {
        text[2 * i] = hex[id[i] >> 4];
        text[2 * i + 1] = hex[id[i] & 0xf];
    }
    text[2 * ACPI_VMGENID_SIZE] = '\0';
}
