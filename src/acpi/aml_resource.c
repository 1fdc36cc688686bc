/* Resource templates for _CRS: the descriptors kiln's devices need (IO, IRQNoFlags,
 * Memory32Fixed, extended Interrupt) and the End Tag with its checksum (ACPI 6.5 §6.4). */
#include <errno.h>

#include "kiln/acpi/aml.h"

/* Small descriptors: one tag byte = type << 3 | length (§6.4.2). */
#define SMALL_TAG(type, len) ((uint8_t)(((type) << 3) | (len)))
#define RES_IRQ_NOFLAGS      SMALL_TAG(0x04, 2) /* §6.4.2.1, the 2-byte form without flags */
#define RES_IO               SMALL_TAG(0x08, 7) /* §6.4.2.5 */
#define RES_END_TAG          SMALL_TAG(0x0f, 1) /* §6.4.2.9 */
#define RES_IO_DECODE16      0x01               /* IO information bit 0: 16-bit decode */

/* Large descriptors: 0x80 | type, then a 16-bit length of what follows (§6.4.3). */
#define RES_MEMORY32_FIXED     0x86 /* §6.4.3.4 */
#define RES_MEMORY32_FIXED_LEN 9
#define RES_EXT_INTERRUPT      0x89 /* §6.4.3.6 */
#define RES_MEM_WRITABLE       0x01 /* Memory32Fixed information bit 0: read/write */
#define ISA_IRQ_COUNT          16

size_t aml_resource_template_begin(struct aml_buf *b)
{
    return aml_buffer_begin(b);
}

void aml_resource_template_end(struct aml_buf *b, size_t mark)
{
    if (b->error)
        return;
    if (mark > b->len) {
        aml_buf_fail(b, -EINVAL);
        return;
    }
    /* The checksum makes every byte of the template, End Tag included, sum to zero. Zero would
     * also be legal ("treat as valid"), but a real one costs nothing. */
    uint8_t sum = RES_END_TAG;
    for (size_t i = mark; i < b->len; i++)
        sum = (uint8_t)(sum + b->data[i]);
    aml_append_byte(b, RES_END_TAG);
    aml_append_byte(b, (uint8_t)-sum);
    aml_buffer_end(b, mark);
}

void aml_res_io16(struct aml_buf *b, uint16_t min, uint16_t max, uint8_t alignment, uint8_t length)
{
    aml_append_byte(b, RES_IO);
    aml_append_byte(b, RES_IO_DECODE16);
    aml_append_le(b, min, 2);
    aml_append_le(b, max, 2);
    aml_append_byte(b, alignment);
    aml_append_byte(b, length);
}

void aml_res_irq_noflags(struct aml_buf *b, unsigned irq)
{
    if (irq >= ISA_IRQ_COUNT) {
        aml_buf_fail(b, -EINVAL);
        return;
    }
    aml_append_byte(b, RES_IRQ_NOFLAGS);
    aml_append_le(b, 1u << irq, 2); /* IRQ mask, bit n = IRQ n */
}

void aml_res_memory32_fixed(struct aml_buf *b, bool writable, uint32_t base, uint32_t length)
{
    aml_append_byte(b, RES_MEMORY32_FIXED);
    aml_append_le(b, RES_MEMORY32_FIXED_LEN, 2);
    aml_append_byte(b, writable ? RES_MEM_WRITABLE : 0);
    aml_append_le(b, base, 4);
    aml_append_le(b, length, 4);
}

void aml_res_interrupt(struct aml_buf *b, uint8_t flags, uint32_t gsi)
{
    aml_append_byte(b, RES_EXT_INTERRUPT);
    aml_append_le(b, 2 + 4, 2); /* flags + table length + one DWORD; no resource source */
    aml_append_byte(b, flags);
    aml_append_byte(b, 1); /* interrupt table length */
    aml_append_le(b, gsi, 4);
}
