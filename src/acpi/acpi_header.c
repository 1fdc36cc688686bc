/* The parts every ACPI table shares: the 36-byte System Description Table Header with kiln's
 * OEM fields (ACPI 6.5 §5.2.6) and the checksum that makes a table's bytes sum to zero. */
#include <errno.h>
#include <string.h>

#include "kiln/acpi/acpi.h"
#include "kiln/vm/platform.h"

/* Header field offsets, §5.2.6 table 5.4. */
#define HDR_LENGTH   4
#define HDR_CHECKSUM 9

#define KILN_OEM_REVISION     1
#define KILN_CREATOR_REVISION 1

_Static_assert(sizeof(PLATFORM_ACPI_OEM_ID) - 1 == 6, "OEM ID is 6 bytes");
_Static_assert(sizeof(PLATFORM_ACPI_OEM_TABLE_ID) - 1 == 8, "OEM table ID is 8 bytes");
_Static_assert(sizeof(PLATFORM_ACPI_CREATOR_ID) - 1 == 4, "creator ID is 4 bytes");

uint8_t acpi_checksum(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint8_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum = (uint8_t)(sum + p[i]);
    return (uint8_t)-sum;
}

void acpi_table_header(struct aml_buf *b, const char signature[4], uint8_t revision)
{
    if (b->len != 0)
        aml_buf_fail(b, -EINVAL);
    aml_append_bytes(b, signature, 4);
    aml_append_le(b, 0, 4); /* length, patched by acpi_table_finish() */
    aml_append_byte(b, revision);
    aml_append_byte(b, 0); /* checksum, likewise */
    aml_append_bytes(b, PLATFORM_ACPI_OEM_ID, 6);
    aml_append_bytes(b, PLATFORM_ACPI_OEM_TABLE_ID, 8);
    aml_append_le(b, KILN_OEM_REVISION, 4);
    aml_append_bytes(b, PLATFORM_ACPI_CREATOR_ID, 4);
    aml_append_le(b, KILN_CREATOR_REVISION, 4);
}

void acpi_table_finish(struct aml_buf *b)
{
    if (b->error)
        return;
    if (b->len < ACPI_TABLE_HEADER_LEN || b->len > UINT32_MAX) {
        aml_buf_fail(b, -EINVAL);
        return;
    }
    for (int i = 0; i < 4; i++)
        b->data[HDR_LENGTH + i] = (uint8_t)(b->len >> (8 * i));
    b->data[HDR_CHECKSUM] = 0;
    b->data[HDR_CHECKSUM] = acpi_checksum(b->data, b->len);
}
