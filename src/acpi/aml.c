/* AML terms: PkgLength, NameStrings, data objects (integers, strings, buffers, packages,
 * EISA IDs), the namespace operators Scope/Device/Method/Name/Notify and the few statements a
 * method body needs: If, LEqual, ArgN, Return (ACPI 6.5 ch. 20). */
#include <errno.h>
#include <string.h>

#include "kiln/acpi/aml.h"

/* Opcodes and prefixes, ACPI 6.5 §20.3 (AML Byte Stream Byte Values). */
enum {
    AML_ZERO_OP = 0x00,
    AML_ONE_OP = 0x01,
    AML_NAME_OP = 0x08,
    AML_BYTE_PREFIX = 0x0a,
    AML_WORD_PREFIX = 0x0b,
    AML_DWORD_PREFIX = 0x0c,
    AML_STRING_PREFIX = 0x0d,
    AML_QWORD_PREFIX = 0x0e,
    AML_SCOPE_OP = 0x10,
    AML_BUFFER_OP = 0x11,
    AML_PACKAGE_OP = 0x12,
    AML_METHOD_OP = 0x14,
    AML_DUAL_NAME_PREFIX = 0x2e,
    AML_MULTI_NAME_PREFIX = 0x2f,
    AML_EXT_OP_PREFIX = 0x5b,
    AML_EXT_DEVICE_OP = 0x82, /* after AML_EXT_OP_PREFIX */
    AML_ROOT_CHAR = 0x5c,
    AML_PARENT_PREFIX_CHAR = 0x5e,
    AML_ARG0_OP = 0x68, /* Arg0Op; Arg1Op..Arg6Op follow */
    AML_NOTIFY_OP = 0x86,
    AML_LEQUAL_OP = 0x93,
    AML_IF_OP = 0xa0,
    AML_RETURN_OP = 0xa4,
};

#define AML_NAMESEG_LEN      4
#define AML_PKGLENGTH_MAX    0x0fffffffu /* 4 + 8 + 8 + 8 bits (§20.2.4) */
#define AML_METHOD_MAX_ARGS  7
#define AML_ARG_MAX          6    /* Arg0..Arg6 (§20.2.6.1) */
#define AML_METHOD_SERIALIZE 0x08 /* MethodFlags bit 3 (§20.2.5.2) */

size_t aml_pkglength_encode(size_t body_len, uint8_t out[4])
{
    /* The value includes the PkgLength bytes, so try the sizes from smallest up. A one-byte
     * PkgLength holds 6 bits; longer ones hold 4 bits in the lead byte plus 8 per extra byte,
     * and the lead byte's bits 7:6 count the extra bytes. */
    if (body_len < 0x3f) { /* (not body_len + 1 <= 0x3f: that wraps for SIZE_MAX) */
        out[0] = (uint8_t)(body_len + 1);
        return 1;
    }
    for (size_t n = 2; n <= 4; n++) {
        size_t max = ((size_t)1 << (4 + 8 * (n - 1))) - 1;
        if (body_len > AML_PKGLENGTH_MAX || body_len + n > max)
            continue;
        size_t value = body_len + n;
        out[0] = (uint8_t)(((n - 1) << 6) | (value & 0x0f));
        for (size_t i = 1; i < n; i++)
            out[i] = (uint8_t)(value >> (4 + 8 * (i - 1)));
        return n;
    }
    return 0;
}

void aml_end(struct aml_buf *b, size_t mark)
{
    if (b->error)
        return;
    if (mark > b->len) {
        aml_buf_fail(b, -EINVAL);
        return;
    }
    uint8_t pkglength[4];
    size_t n = aml_pkglength_encode(b->len - mark, pkglength);
    if (n == 0) {
        aml_buf_fail(b, -E2BIG);
        return;
    }
    aml_insert_bytes(b, mark, pkglength, n);
}

static bool nameseg_char_ok(char c, bool lead)
{
    return (c >= 'A' && c <= 'Z') || c == '_' || (!lead && c >= '0' && c <= '9');
}

/* Validates one segment of len characters and appends it padded to 4 with '_'. */
static void nameseg(struct aml_buf *b, const char *seg, size_t len)
{
    if (len == 0 || len > AML_NAMESEG_LEN) {
        aml_buf_fail(b, -EINVAL);
        return;
    }
    char padded[AML_NAMESEG_LEN] = {'_', '_', '_', '_'};
    for (size_t i = 0; i < len; i++) {
        if (!nameseg_char_ok(seg[i], i == 0)) {
            aml_buf_fail(b, -EINVAL);
            return;
        }
        padded[i] = seg[i];
    }
    aml_append_bytes(b, padded, sizeof(padded));
}

void aml_namestring(struct aml_buf *b, const char *path)
{
    if (!path) {
        aml_buf_fail(b, -EINVAL);
        return;
    }
    const char *p = path;
    if (*p == '\\') {
        aml_append_byte(b, AML_ROOT_CHAR);
        p++;
    } else {
        while (*p == '^') {
            aml_append_byte(b, AML_PARENT_PREFIX_CHAR);
            p++;
        }
    }
    if (*p == '\0') {
        aml_append_byte(b, AML_ZERO_OP); /* NullName */
        return;
    }
    size_t nsegs = 1;
    for (const char *c = p; *c; c++)
        nsegs += *c == '.';
    if (nsegs > 255) {
        aml_buf_fail(b, -EINVAL);
        return;
    }
    if (nsegs == 2) {
        aml_append_byte(b, AML_DUAL_NAME_PREFIX);
    } else if (nsegs > 2) {
        aml_append_byte(b, AML_MULTI_NAME_PREFIX);
        aml_append_byte(b, (uint8_t)nsegs);
    }
    while (*p) {
        size_t len = strcspn(p, ".");
        nameseg(b, p, len);
        p += len;
        if (*p == '.' && *++p == '\0')
            aml_buf_fail(b, -EINVAL); /* trailing '.' */
    }
}

void aml_integer(struct aml_buf *b, uint64_t value)
{
    if (value == 0) {
        aml_append_byte(b, AML_ZERO_OP);
    } else if (value == 1) {
        aml_append_byte(b, AML_ONE_OP);
    } else if (value <= UINT8_MAX) {
        aml_append_byte(b, AML_BYTE_PREFIX);
        aml_append_le(b, value, 1);
    } else if (value <= UINT16_MAX) {
        aml_append_byte(b, AML_WORD_PREFIX);
        aml_append_le(b, value, 2);
    } else if (value <= UINT32_MAX) {
        aml_append_byte(b, AML_DWORD_PREFIX);
        aml_append_le(b, value, 4);
    } else {
        aml_append_byte(b, AML_QWORD_PREFIX);
        aml_append_le(b, value, 8);
    }
}

void aml_string(struct aml_buf *b, const char *s)
{
    if (!s) {
        aml_buf_fail(b, -EINVAL);
        return;
    }
    for (const char *c = s; *c; c++) {
        if ((unsigned char)*c > 0x7f) {
            aml_buf_fail(b, -EINVAL); /* AsciiCharList is 0x01-0x7f */
            return;
        }
    }
    aml_append_byte(b, AML_STRING_PREFIX);
    aml_append_bytes(b, s, strlen(s) + 1); /* with its NullChar */
}

size_t aml_buffer_begin(struct aml_buf *b)
{
    aml_append_byte(b, AML_BUFFER_OP);
    return b->len;
}

void aml_buffer_end(struct aml_buf *b, size_t mark)
{
    if (b->error)
        return;
    if (mark > b->len) {
        aml_buf_fail(b, -EINVAL);
        return;
    }
    /* DefBuffer := BufferOp PkgLength BufferSize ByteList: encode BufferSize on the side and
     * insert it, then the PkgLength that covers it. */
    struct aml_buf size;
    aml_buf_init(&size, 16);
    aml_integer(&size, b->len - mark);
    if (size.error)
        aml_buf_fail(b, size.error);
    else
        aml_insert_bytes(b, mark, size.data, size.len);
    aml_buf_free(&size);
    aml_end(b, mark);
}

void aml_buffer(struct aml_buf *b, const void *bytes, size_t len)
{
    size_t mark = aml_buffer_begin(b);
    aml_append_bytes(b, bytes, len);
    aml_buffer_end(b, mark);
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

uint32_t aml_eisaid_value(const char *id)
{
    if (!id || strlen(id) != 7)
        return 0;
    /* Three letters, 5 bits each ('A' = 1), then four hex digits: a big-endian 32-bit value
     * (§19.6.35). AML stores it byte-swapped, so the manufacturer bytes come first in memory. */
    uint32_t be = 0;
    for (int i = 0; i < 3; i++) {
        if (id[i] < 'A' || id[i] > 'Z')
            return 0;
        be = (be << 5) | (uint32_t)(id[i] - 'A' + 1);
    }
    for (int i = 3; i < 7; i++) {
        int d = hex_digit(id[i]);
        if (d < 0)
            return 0;
        be = (be << 4) | (uint32_t)d;
    }
    return __builtin_bswap32(be);
}

void aml_eisaid(struct aml_buf *b, const char *id)
{
    uint32_t value = aml_eisaid_value(id);
    if (value == 0) {
        aml_buf_fail(b, -EINVAL);
        return;
    }
    /* Always a DWordConst, even where a shorter integer would do: ASL's EISAID() does the
     * same, and readers (and iasl's disassembler) recognise IDs by that form. */
    aml_append_byte(b, AML_DWORD_PREFIX);
    aml_append_le(b, value, 4);
}

size_t aml_package_begin(struct aml_buf *b, uint8_t nelements)
{
    aml_append_byte(b, AML_PACKAGE_OP);
    size_t mark = b->len;
    aml_append_byte(b, nelements);
    return mark;
}

size_t aml_scope_begin(struct aml_buf *b, const char *name)
{
    aml_append_byte(b, AML_SCOPE_OP);
    size_t mark = b->len;
    aml_namestring(b, name);
    return mark;
}

size_t aml_device_begin(struct aml_buf *b, const char *name)
{
    aml_append_byte(b, AML_EXT_OP_PREFIX);
    aml_append_byte(b, AML_EXT_DEVICE_OP);
    size_t mark = b->len;
    aml_namestring(b, name);
    return mark;
}

size_t aml_method_begin(struct aml_buf *b, const char *name, unsigned nargs, bool serialized)
{
    aml_append_byte(b, AML_METHOD_OP);
    size_t mark = b->len;
    aml_namestring(b, name);
    if (nargs > AML_METHOD_MAX_ARGS)
        aml_buf_fail(b, -EINVAL);
    /* MethodFlags: ArgCount in bits 2:0, SerializeFlag bit 3, SyncLevel 0. */
    aml_append_byte(b, (uint8_t)(nargs | (serialized ? AML_METHOD_SERIALIZE : 0)));
    return mark;
}

void aml_name(struct aml_buf *b, const char *name)
{
    aml_append_byte(b, AML_NAME_OP);
    aml_namestring(b, name);
}

void aml_name_integer(struct aml_buf *b, const char *name, uint64_t value)
{
    aml_name(b, name);
    aml_integer(b, value);
}

void aml_name_string(struct aml_buf *b, const char *name, const char *s)
{
    aml_name(b, name);
    aml_string(b, s);
}

void aml_name_eisaid(struct aml_buf *b, const char *name, const char *id)
{
    aml_name(b, name);
    aml_eisaid(b, id);
}

void aml_notify(struct aml_buf *b, const char *target, uint64_t value)
{
    aml_append_byte(b, AML_NOTIFY_OP);
    aml_namestring(b, target);
    aml_integer(b, value);
}

void aml_arg(struct aml_buf *b, unsigned n)
{
    if (n > AML_ARG_MAX) {
        aml_buf_fail(b, -EINVAL);
        return;
    }
    aml_append_byte(b, (uint8_t)(AML_ARG0_OP + n));
}

void aml_lequal(struct aml_buf *b)
{
    aml_append_byte(b, AML_LEQUAL_OP);
}

size_t aml_if_begin(struct aml_buf *b)
{
    aml_append_byte(b, AML_IF_OP);
    return b->len;
}

void aml_return(struct aml_buf *b)
{
    aml_append_byte(b, AML_RETURN_OP);
}
