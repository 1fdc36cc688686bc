/* Unit tests for the AML encoder: every helper's exact bytes, derived by hand from ACPI 6.5
 * ch. 19/20 and §6.4 (not from the encoder), plus the failure paths that must never crash. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kiln/acpi/aml.h"

/* Compares a buffer with the expected bytes, printing both on mismatch. */
#define assert_aml(b, ...)                                                                         \
    do {                                                                                           \
        const uint8_t expect_[] = {__VA_ARGS__};                                                   \
        check_bytes((b), expect_, sizeof(expect_), __LINE__);                                      \
    } while (0)

static void check_bytes(const struct aml_buf *b, const uint8_t *expect, size_t len, int line)
{
    assert_int_equal(b->error, 0);
    if (b->len != len || memcmp(b->data, expect, len) != 0) {
        print_message("line %d: got %zu bytes:", line, b->len);
        for (size_t i = 0; i < b->len; i++)
            print_message(" %02x", b->data[i]);
        print_message("\nexpected %zu bytes:", len);
        for (size_t i = 0; i < len; i++)
            print_message(" %02x", expect[i]);
        print_message("\n");
        fail();
    }
}

/* PkgLength ----------------------------------------------------------------------------- */

static void expect_pkglength(size_t body, size_t n, uint8_t b0, uint8_t b1, uint8_t b2, uint8_t b3)
{
    uint8_t out[4] = {0};
    const uint8_t want[4] = {b0, b1, b2, b3};
    assert_int_equal(aml_pkglength_encode(body, out), n);
    assert_memory_equal(out, want, n);
}

static void test_pkglength_boundaries(void **state)
{
    /* The encoded value counts the PkgLength bytes too. One byte holds values up to 63. */
    expect_pkglength(0, 1, 0x01, 0, 0, 0);
    expect_pkglength(62, 1, 0x3f, 0, 0, 0); /* value 63: the largest one-byte PkgLength */
    /* Body 63 would make the value 64, too big for one byte; with two bytes it is 65 = 0x41:
     * lead byte 0x40 | low nibble 1, then 0x41 >> 4 = 0x04. */
    expect_pkglength(63, 2, 0x41, 0x04, 0, 0);
    expect_pkglength(4093, 2, 0x4f, 0xff, 0, 0); /* value 4095 = 0xfff: two bytes' maximum */
    /* Body 4094: value 4096 doesn't fit in 12 bits, so three bytes, value 4097 = 0x1001. */
    expect_pkglength(4094, 3, 0x81, 0x00, 0x01, 0);
    expect_pkglength(0xffffc, 3, 0x8f, 0xff, 0xff, 0);      /* value 0xfffff */
    expect_pkglength(0xffffd, 4, 0xc1, 0x00, 0x00, 0x01);   /* value 0x100001 */
    expect_pkglength(0xffffffb, 4, 0xcf, 0xff, 0xff, 0xff); /* value 0xfffffff, the maximum */
    uint8_t out[4];
    assert_int_equal(aml_pkglength_encode(0xffffffc, out), 0);
    assert_int_equal(aml_pkglength_encode(SIZE_MAX, out), 0);
}

/* A Scope whose body is exactly 63 or 64 bytes shows aml_end() picking the size and inserting
 * the PkgLength in front of the body. */
static void test_scope_pkglength_grows_to_two_bytes(void **state)
{
    struct aml_buf b;
    for (size_t extra = 0; extra < 2; extra++) {
        aml_buf_init(&b, 0);
        size_t mark = aml_scope_begin(&b, "ABCD"); /* 4 bytes of body so far */
        for (size_t i = 0; i < 58 + extra; i++)
            aml_append_byte(&b, 0xa3); /* NoopOp */
        aml_end(&b, mark);
        assert_int_equal(b.error, 0);
        assert_int_equal(b.data[0], 0x10);
        if (extra == 0) { /* body 62: value 63 */
            assert_int_equal(b.len, 1 + 1 + 62);
            assert_int_equal(b.data[1], 0x3f);
            assert_memory_equal(b.data + 2, "ABCD", 4);
        } else { /* body 63: value 65 in two bytes */
            assert_int_equal(b.len, 1 + 2 + 63);
            assert_int_equal(b.data[1], 0x41);
            assert_int_equal(b.data[2], 0x04);
            assert_memory_equal(b.data + 3, "ABCD", 4);
        }
        aml_buf_free(&b);
    }
}

/* Integers ------------------------------------------------------------------------------ */

static void expect_integer(uint64_t value, const uint8_t *want, size_t len)
{
    struct aml_buf b;
    aml_buf_init(&b, 0);
    aml_integer(&b, value);
    check_bytes(&b, want, len, __LINE__);
    aml_buf_free(&b);
}

#define EXPECT_INTEGER(value, ...)                                                                 \
    do {                                                                                           \
        const uint8_t want_[] = {__VA_ARGS__};                                                     \
        expect_integer((value), want_, sizeof(want_));                                             \
    } while (0)

static void test_integers_pick_shortest_encoding(void **state)
{
    EXPECT_INTEGER(0, 0x00);       /* ZeroOp */
    EXPECT_INTEGER(1, 0x01);       /* OneOp */
    EXPECT_INTEGER(2, 0x0a, 0x02); /* BytePrefix */
    EXPECT_INTEGER(0xff, 0x0a, 0xff);
    EXPECT_INTEGER(0x100, 0x0b, 0x00, 0x01); /* WordPrefix */
    EXPECT_INTEGER(0xffff, 0x0b, 0xff, 0xff);
    EXPECT_INTEGER(0x10000, 0x0c, 0x00, 0x00, 0x01, 0x00); /* DWordPrefix */
    EXPECT_INTEGER(0xffffffff, 0x0c, 0xff, 0xff, 0xff, 0xff);
    EXPECT_INTEGER(0x100000000, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00); /* QWord */
    EXPECT_INTEGER(UINT64_MAX, 0x0e, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
}

/* Strings, buffers, packages, EISA IDs ---------------------------------------------------- */

static void test_strings(void **state)
{
    struct aml_buf b;
    aml_buf_init(&b, 0);
    aml_string(&b, "ACPI0013");
    assert_aml(&b, 0x0d, 'A', 'C', 'P', 'I', '0', '0', '1', '3', 0x00);
    aml_buf_free(&b);

    aml_buf_init(&b, 0);
    aml_string(&b, "");
    assert_aml(&b, 0x0d, 0x00);
    aml_buf_free(&b);

    aml_buf_init(&b, 0);
    aml_string(&b, "caf\xc3\xa9"); /* AML strings are 7-bit ASCII */
    assert_int_equal(b.error, -EINVAL);
    aml_buf_free(&b);
}

static void test_buffers(void **state)
{
    struct aml_buf b;
    aml_buf_init(&b, 0);
    const uint8_t three[] = {1, 2, 3};
    aml_buffer(&b, three, sizeof(three));
    /* BufferOp, PkgLength 6 (itself + BufferSize 0a 03 + 3 bytes), BufferSize, bytes. */
    assert_aml(&b, 0x11, 0x06, 0x0a, 0x03, 0x01, 0x02, 0x03);
    aml_buf_free(&b);

    aml_buf_init(&b, 0);
    aml_buffer(&b, NULL, 0);
    assert_aml(&b, 0x11, 0x02, 0x00); /* Buffer (Zero) {} */
    aml_buf_free(&b);
}

static void test_packages(void **state)
{
    struct aml_buf b;
    aml_buf_init(&b, 0);
    aml_name(&b, "_S5");
    size_t pkg = aml_package_begin(&b, 2);
    aml_integer(&b, 5);
    aml_integer(&b, 0);
    aml_end(&b, pkg);
    /* Name (_S5_, Package (2) {5, Zero}): PkgLength 5 = itself + NumElements + 0a 05 + 00. */
    assert_aml(&b, 0x08, '_', 'S', '5', '_', 0x12, 0x05, 0x02, 0x0a, 0x05, 0x00);
    aml_buf_free(&b);
}

static void test_eisaid(void **state)
{
    /* "PNP" = 16,14,16 in 5 bits each -> 0x41d0; product 0x0501: big-endian 0x41d00501, stored
     * byte-swapped, so the DWord reads 0x0105d041 and memory holds 41 d0 05 01. */
    assert_int_equal(aml_eisaid_value("PNP0501"), 0x0105d041);
    assert_int_equal(aml_eisaid_value("PNP0B00"), 0x000bd041);
    assert_int_equal(aml_eisaid_value("PNP0C0C"), 0x0c0cd041);
    assert_int_equal(aml_eisaid_value("pnp0501"), 0);
    assert_int_equal(aml_eisaid_value("PNP050"), 0);
    assert_int_equal(aml_eisaid_value("PNP05G1"), 0);
    assert_int_equal(aml_eisaid_value(NULL), 0);

    struct aml_buf b;
    aml_buf_init(&b, 0);
    aml_eisaid(&b, "PNP0501");
    assert_aml(&b, 0x0c, 0x41, 0xd0, 0x05, 0x01);
    aml_buf_free(&b);

    aml_buf_init(&b, 0);
    aml_eisaid(&b, "PNP05G1");
    assert_int_equal(b.error, -EINVAL);
    aml_buf_free(&b);
}

/* Names --------------------------------------------------------------------------------- */

#define EXPECT_NAME(path, ...)                                                                     \
    do {                                                                                           \
        struct aml_buf b_;                                                                         \
        aml_buf_init(&b_, 0);                                                                      \
        aml_namestring(&b_, (path));                                                               \
        assert_aml(&b_, __VA_ARGS__);                                                              \
        aml_buf_free(&b_);                                                                         \
    } while (0)

static void test_names(void **state)
{
    EXPECT_NAME("COM1", 'C', 'O', 'M', '1');
    EXPECT_NAME("_SB", '_', 'S', 'B', '_'); /* padded with '_' */
    EXPECT_NAME("A", 'A', '_', '_', '_');
    EXPECT_NAME("\\_SB_.COM1", 0x5c, 0x2e, '_', 'S', 'B', '_', 'C', 'O', 'M', '1');
    EXPECT_NAME("\\_SB.COM1", 0x5c, 0x2e, '_', 'S', 'B', '_', 'C', 'O', 'M', '1');
    EXPECT_NAME("\\_SB.PCI0.ISA.COM1", 0x5c, 0x2f, 0x04, '_', 'S', 'B', '_', 'P', 'C', 'I', '0',
                'I', 'S', 'A', '_', 'C', 'O', 'M', '1');
    EXPECT_NAME("\\", 0x5c, 0x00); /* root: RootChar NullName */
    EXPECT_NAME("", 0x00);         /* NullName */
    EXPECT_NAME("^^FOO", 0x5e, 0x5e, 'F', 'O', 'O', '_');
    EXPECT_NAME("^PWRB.X", 0x5e, 0x2e, 'P', 'W', 'R', 'B', 'X', '_', '_', '_');

    const char *bad[] = {"1ABC", "ABCDE", "com1", "\\_SB..X", "X.", ".X", "\\^X", "A-B", NULL};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct aml_buf b;
        aml_buf_init(&b, 0);
        aml_namestring(&b, bad[i]);
        if (b.error != -EINVAL)
            print_message("name \"%s\" was accepted\n", bad[i] ? bad[i] : "(null)");
        assert_int_equal(b.error, -EINVAL);
        aml_buf_free(&b);
    }
}

static void test_name_objects(void **state)
{
    struct aml_buf b;
    aml_buf_init(&b, 0);
    aml_name_integer(&b, "_UID", 1);
    aml_name_string(&b, "_HID", "LNRO0005");
    aml_name_eisaid(&b, "_HID", "PNP0C0C");
    assert_aml(&b, 0x08, '_', 'U', 'I', 'D', 0x01,                                           /* */
               0x08, '_', 'H', 'I', 'D', 0x0d, 'L', 'N', 'R', 'O', '0', '0', '0', '5', 0x00, /* */
               0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0c, 0x0c);
    aml_buf_free(&b);
}

/* Methods and Notify -------------------------------------------------------------------- */

static void test_method_with_notify(void **state)
{
    struct aml_buf b;
    aml_buf_init(&b, 0);
    size_t m = aml_method_begin(&b, "_EVT", 1, false);
    aml_notify(&b, "\\_SB.PWRB", 0x80);
    aml_end(&b, m);
    /* MethodOp PkgLength(0x13 = 1 + 4 name + 1 flags + 13 notify) _EVT flags(1 arg)
     * NotifyOp \ DualNamePrefix _SB_ PWRB BytePrefix 0x80 */
    assert_aml(&b, 0x14, 0x13, '_', 'E', 'V', 'T', 0x01, 0x86, 0x5c, 0x2e, '_', 'S', 'B', '_', 'P',
               'W', 'R', 'B', 0x0a, 0x80);
    aml_buf_free(&b);

    aml_buf_init(&b, 0);
    m = aml_method_begin(&b, "_STA", 0, true);
    aml_end(&b, m);
    assert_aml(&b, 0x14, 0x06, '_', 'S', 'T', 'A', 0x08); /* SerializeFlag = bit 3 */
    aml_buf_free(&b);

    aml_buf_init(&b, 0);
    aml_method_begin(&b, "_TOO", 8, false); /* at most 7 arguments */
    assert_int_equal(b.error, -EINVAL);
    aml_buf_free(&b);
}

/* If (LEqual (Arg0, 10)) { Notify (\_SB.VGEN, 0x80) } and Return (Package (2) {...}): the
 * GED's _EVT case and the VM generation ID's ADDR, bytes as iasl compiles the same ASL. */
static void test_if_lequal_return(void **state)
{
    struct aml_buf b;
    aml_buf_init(&b, 0);
    size_t i = aml_if_begin(&b);
    aml_lequal(&b);
    aml_arg(&b, 0);
    aml_integer(&b, 10);
    aml_notify(&b, "\\_SB.VGEN", 0x80);
    aml_end(&b, i);
    /* IfOp PkgLength(0x12 = 1 + 4 predicate + 13 notify) LEqualOp Arg0Op BytePrefix 0x0a
     * NotifyOp \ DualNamePrefix _SB_ VGEN BytePrefix 0x80 */
    assert_aml(&b, 0xa0, 0x12, 0x93, 0x68, 0x0a, 0x0a, 0x86, 0x5c, 0x2e, '_', 'S', 'B', '_', 'V',
               'G', 'E', 'N', 0x0a, 0x80);
    aml_buf_free(&b);

    aml_buf_init(&b, 0);
    aml_return(&b);
    size_t p = aml_package_begin(&b, 2);
    aml_integer(&b, 0xef000);
    aml_integer(&b, 0);
    aml_end(&b, p);
    /* ReturnOp PackageOp PkgLength(8) NumElements(2) DWordConst 0x000ef000 ZeroOp */
    assert_aml(&b, 0xa4, 0x12, 0x08, 0x02, 0x0c, 0x00, 0xf0, 0x0e, 0x00, 0x00);
    aml_buf_free(&b);

    aml_buf_init(&b, 0);
    aml_arg(&b, 6);
    assert_aml(&b, 0x6e); /* Arg6Op, the last */
    aml_arg(&b, 7);
    assert_int_equal(b.error, -EINVAL);
    aml_buf_free(&b);
}

/* Resource descriptors ------------------------------------------------------------------ */

static void test_resource_descriptors(void **state)
{
    struct aml_buf b;
    aml_buf_init(&b, 0);
    aml_res_io16(&b, 0x3f8, 0x3f8, 1, 8);
    /* Small item 0x08, length 7; Decode16; min; max; alignment; length. */
    assert_aml(&b, 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08);
    aml_buf_free(&b);

    aml_buf_init(&b, 0);
    aml_res_irq_noflags(&b, 4);
    aml_res_irq_noflags(&b, 8);
    assert_aml(&b, 0x22, 0x10, 0x00, 0x22, 0x00, 0x01); /* small item 0x04, length 2; mask */
    aml_buf_free(&b);

    aml_buf_init(&b, 0);
    aml_res_irq_noflags(&b, 16); /* not an ISA IRQ */
    assert_int_equal(b.error, -EINVAL);
    aml_buf_free(&b);

    aml_buf_init(&b, 0);
    aml_res_memory32_fixed(&b, true, 0xd0000000, 0x1000);
    /* Large item 0x06, length 9; read/write; base; length. */
    assert_aml(&b, 0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x10, 0x00, 0x00);
    aml_buf_free(&b);

    aml_buf_init(&b, 0);
    aml_res_interrupt(&b, AML_INT_CONSUMER | AML_INT_EDGE, 9);
    /* Large item 0x09, length 6; flags consumer|edge (active high, exclusive); 1 interrupt. */
    assert_aml(&b, 0x89, 0x06, 0x00, 0x03, 0x01, 0x09, 0x00, 0x00, 0x00);
    aml_buf_free(&b);

    aml_buf_init(&b, 0);
    aml_res_interrupt(&b, AML_INT_ACTIVE_LOW | AML_INT_SHARED | AML_INT_WAKE, 0x12345678);
    assert_aml(&b, 0x89, 0x06, 0x00, 0x1c, 0x01, 0x78, 0x56, 0x34, 0x12);
    aml_buf_free(&b);
}

/* IO + IRQNoFlags + EndTag in a Buffer: the template the DSDT gives COM1. The checksum makes
 * 47 01 f8 03 f8 03 01 08 22 10 00 79 (sum 0x2f2) plus itself sum to zero: 0x0e. */
#define COM1_TEMPLATE                                                                              \
    0x11, 0x10, 0x0a, 0x0d, 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08, 0x22, 0x10, 0x00,      \
        0x79, 0x0e

static void test_resource_template(void **state)
{
    struct aml_buf b;
    aml_buf_init(&b, 0);
    size_t rt = aml_resource_template_begin(&b);
    aml_res_io16(&b, 0x3f8, 0x3f8, 1, 8);
    aml_res_irq_noflags(&b, 4);
    aml_resource_template_end(&b, rt);
    assert_aml(&b, COM1_TEMPLATE);
    aml_buf_free(&b);

    aml_buf_init(&b, 0);
    rt = aml_resource_template_begin(&b);
    aml_resource_template_end(&b, rt);
    assert_aml(&b, 0x11, 0x05, 0x0a, 0x02, 0x79, 0x87); /* empty: just the End Tag */
    aml_buf_free(&b);
}

/* Devices and scopes, byte for byte ------------------------------------------------------- */

static void test_device_com1(void **state)
{
    struct aml_buf b;
    aml_buf_init(&b, 0);
    size_t dev = aml_device_begin(&b, "COM1");
    aml_name_eisaid(&b, "_HID", "PNP0501");
    aml_name(&b, "_CRS");
    size_t rt = aml_resource_template_begin(&b);
    aml_res_io16(&b, 0x3f8, 0x3f8, 1, 8);
    aml_res_irq_noflags(&b, 4);
    aml_resource_template_end(&b, rt);
    aml_end(&b, dev);
    /* DeviceOp; PkgLength 0x25 = 1 + 4 (COM1) + 10 (_HID) + 22 (_CRS with 17-byte buffer). */
    assert_aml(&b, 0x5b, 0x82, 0x25, 'C', 'O', 'M', '1',               /* */
               0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x05, 0x01, /* */
               0x08, '_', 'C', 'R', 'S', COM1_TEMPLATE);
    aml_buf_free(&b);
}

static void test_nested_scope_device(void **state)
{
    struct aml_buf b;
    aml_buf_init(&b, 0);
    size_t sb = aml_scope_begin(&b, "\\_SB");
    size_t dev = aml_device_begin(&b, "PWRB");
    aml_name_eisaid(&b, "_HID", "PNP0C0C");
    aml_end(&b, dev);
    aml_end(&b, sb);
    /* Device body 4 + 10 = 14 -> 0x0f; the Device is 17 bytes; Scope body 5 + 17 -> 0x17. */
    assert_aml(&b, 0x10, 0x17, 0x5c, '_', 'S', 'B', '_', /* */
               0x5b, 0x82, 0x0f, 'P', 'W', 'R', 'B',     /* */
               0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0c, 0x0c);
    aml_buf_free(&b);
}

/* An inner PkgLength of two bytes inside an outer one of two bytes. */
static void test_nested_two_byte_pkglengths(void **state)
{
    struct aml_buf b;
    aml_buf_init(&b, 0);
    uint8_t zeros[100] = {0};
    size_t sb = aml_scope_begin(&b, "\\_SB");
    aml_name(&b, "BUF0");
    aml_buffer(&b, zeros, sizeof(zeros));
    aml_end(&b, sb);
    assert_int_equal(b.error, 0);
    /* Buffer: body 2 (0a 64) + 100 -> value 104 = 0x68 -> 48 06; 105 bytes in all. Name: 110.
     * Scope body 5 + 110 = 115 -> value 117 = 0x75 -> 45 07. */
    const uint8_t head[] = {0x10, 0x45, 0x07, 0x5c, '_',  'S',  'B',  '_',  0x08,
                            'B',  'U',  'F',  '0',  0x11, 0x48, 0x06, 0x0a, 0x64};
    assert_int_equal(b.len, 3 + 115);
    assert_memory_equal(b.data, head, sizeof(head));
    aml_buf_free(&b);
}

/* Failure paths ------------------------------------------------------------------------- */

static void test_limit_fails_buffer_without_crashing(void **state)
{
    struct aml_buf b;
    aml_buf_init(&b, 8);
    size_t dev = aml_device_begin(&b, "COM1"); /* 6 bytes */
    aml_name_eisaid(&b, "_HID", "PNP0501");    /* does not fit */
    assert_true(aml_buf_failed(&b));
    assert_int_equal(b.error, -E2BIG);
    size_t len = b.len;
    aml_res_io16(&b, 1, 2, 3, 4); /* every later call is a no-op */
    aml_end(&b, dev);
    aml_insert_bytes(&b, 0, "x", 1);
    assert_int_equal(b.len, len);
    assert_int_equal(b.error, -E2BIG); /* the first error sticks */
    aml_buf_free(&b);
    aml_buf_free(&b); /* freeing twice is harmless */
}

static void test_bad_mark_fails(void **state)
{
    struct aml_buf b;
    aml_buf_init(&b, 0);
    aml_append_byte(&b, 0);
    aml_end(&b, 5);
    assert_int_equal(b.error, -EINVAL);
    aml_buf_free(&b);

    aml_buf_init(&b, 0);
    aml_buffer_end(&b, 1);
    assert_int_equal(b.error, -EINVAL);
    aml_buf_free(&b);
}

static void test_append_le(void **state)
{
    struct aml_buf b;
    aml_buf_init(&b, 0);
    aml_append_le(&b, 0x1122334455667788ULL, 8);
    aml_append_le(&b, 0xabcd, 2);
    assert_aml(&b, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0xcd, 0xab);
    aml_append_le(&b, 0, 9);
    assert_int_equal(b.error, -EINVAL);
    aml_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pkglength_boundaries),
        cmocka_unit_test(test_scope_pkglength_grows_to_two_bytes),
        cmocka_unit_test(test_integers_pick_shortest_encoding),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_buffers),
        cmocka_unit_test(test_packages),
        cmocka_unit_test(test_eisaid),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_name_objects),
        cmocka_unit_test(test_method_with_notify),
        cmocka_unit_test(test_if_lequal_return),
        cmocka_unit_test(test_resource_descriptors),
        cmocka_unit_test(test_resource_template),
        cmocka_unit_test(test_device_com1),
        cmocka_unit_test(test_nested_scope_device),
        cmocka_unit_test(test_nested_two_byte_pkglengths),
        cmocka_unit_test(test_limit_fails_buffer_without_crashing),
        cmocka_unit_test(test_bad_mark_fails),
        cmocka_unit_test(test_append_le),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
