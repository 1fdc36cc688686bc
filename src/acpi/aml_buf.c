/* The growable byte buffer every ACPI table and AML stream is built in: bounded growth, a
 * sticky first error instead of aborts, and insertion for back-patched PkgLengths. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/acpi/aml.h"

void aml_buf_init(struct aml_buf *b, size_t limit)
{
    memset(b, 0, sizeof(*b));
    b->limit = limit ? limit : AML_BUF_DEFAULT_LIMIT;
}

void aml_buf_free(struct aml_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void aml_buf_fail(struct aml_buf *b, int error)
{
    if (!b->error)
        b->error = error;
}

/* Makes room for extra more bytes; false (and the buffer failed) if that is impossible. */
static bool reserve(struct aml_buf *b, size_t extra)
{
    if (b->error)
        return false;
    if (extra > b->limit || b->len > b->limit - extra) {
        aml_buf_fail(b, -E2BIG);
        return false;
    }
    size_t need = b->len + extra;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->limit)
        cap = b->limit;
    uint8_t *data = realloc(b->data, cap);
    if (!data) {
        aml_buf_fail(b, -ENOMEM);
        return false;
    }
    b->data = data;
    b->cap = cap;
    return true;
}

void aml_append_bytes(struct aml_buf *b, const void *bytes, size_t len)
{
    if (len == 0 || !reserve(b, len))
        return;
    memcpy(b->data + b->len, bytes, len);
    b->len += len;
}

void aml_append_byte(struct aml_buf *b, uint8_t byte)
{
    aml_append_bytes(b, &byte, 1);
}

void aml_append_le(struct aml_buf *b, uint64_t value, unsigned nbytes)
{
    uint8_t bytes[8];
    if (nbytes > sizeof(bytes)) {
        aml_buf_fail(b, -EINVAL);
        return;
    }
    for (unsigned i = 0; i < nbytes; i++)
        bytes[i] = (uint8_t)(value >> (8 * i));
    aml_append_bytes(b, bytes, nbytes);
}

void aml_insert_bytes(struct aml_buf *b, size_t pos, const void *bytes, size_t len)
{
    if (b->error)
        return;
    if (pos > b->len) {
        aml_buf_fail(b, -EINVAL);
        return;
    }
    if (len == 0 || !reserve(b, len))
        return;
    memmove(b->data + pos + len, b->data + pos, b->len - pos);
    memcpy(b->data + pos, bytes, len);
    b->len += len;
}
