/* A small AML encoder: a byte buffer plus one helper per ASL construct kiln's DSDT uses (names,
 * data, Scope/Device/Method/Name/Notify, If/LEqual/Return, resources). ACPI 6.5 ch. 19/20. */
#ifndef KILN_AML_H
#define KILN_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The buffer never aborts: the first failure (out of memory, growth past `limit`, a bad name,
 * a PkgLength too large, a misused mark) is recorded in `error` and every later call is a no-op.
 * Builders therefore append freely and check aml_buf_failed() once at the end.
 */
struct aml_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t limit; /* len may never exceed this */
    int error;    /* 0, or the first failure as a negative errno (-ENOMEM, -E2BIG, -EINVAL) */
};

#define AML_BUF_DEFAULT_LIMIT (16u << 20) /* far above any table kiln builds */

/* limit 0 means AML_BUF_DEFAULT_LIMIT. Never allocates; the first append does. */
void aml_buf_init(struct aml_buf *b, size_t limit);
void aml_buf_free(struct aml_buf *b);
static inline bool aml_buf_failed(const struct aml_buf *b)
{
    return b->error != 0;
}
/* Records a failure (only the first one sticks). */
void aml_buf_fail(struct aml_buf *b, int error);

/* Raw bytes. aml_append_le writes the low `nbytes` bytes of value, little-endian. */
void aml_append_byte(struct aml_buf *b, uint8_t byte);
void aml_append_bytes(struct aml_buf *b, const void *bytes, size_t len);
void aml_append_le(struct aml_buf *b, uint64_t value, unsigned nbytes);
/* Inserts len bytes at offset pos (<= b->len), moving the tail up. */
void aml_insert_bytes(struct aml_buf *b, size_t pos, const void *bytes, size_t len);

/*
 * PkgLength (ACPI 6.5 §20.2.4): the encoded value counts the PkgLength bytes themselves plus
 * the body_len bytes after them. Writes 1-4 bytes to out and returns how many, or 0 if the
 * package would exceed the 28-bit maximum.
 */
size_t aml_pkglength_encode(size_t body_len, uint8_t out[4]);

/*
 * NameString (§20.2.2): "\\" root and "^" parent prefixes, then segments separated by '.',
 * each 1-4 characters ([A-Z_] then [A-Z0-9_]) padded with '_' ("_SB" -> "_SB_"). One segment is
 * written bare, two with DualNamePrefix, more with MultiNamePrefix; none gives NullName.
 * An invalid name fails the buffer with -EINVAL.
 */
void aml_namestring(struct aml_buf *b, const char *path);

/* Data objects (§20.2.3). Integers use the shortest of ZeroOp, OneOp, Byte/Word/DWord/QWord
 * prefix. Strings are ASCII 0x01-0x7f (anything else is -EINVAL). */
void aml_integer(struct aml_buf *b, uint64_t value);
void aml_string(struct aml_buf *b, const char *s);
void aml_buffer(struct aml_buf *b, const void *bytes, size_t len);
/* The 32-bit compressed EISA ID (§19.6.35 EISAID) of "UUUXXXX" (3 upper-case letters, 4 hex
 * digits), or 0 if id is malformed. aml_eisaid() appends it as a DWordConst. */
uint32_t aml_eisaid_value(const char *id);
void aml_eisaid(struct aml_buf *b, const char *id);

/*
 * Constructs with a body: each *_begin writes the opcode and returns a mark; after the body,
 * aml_end(b, mark) inserts the PkgLength (and for buffers the size) in front of it. Marks nest
 * like parentheses: close the innermost first.
 */
size_t aml_scope_begin(struct aml_buf *b, const char *name);
size_t aml_device_begin(struct aml_buf *b, const char *name);
size_t aml_method_begin(struct aml_buf *b, const char *name, unsigned nargs, bool serialized);
size_t aml_package_begin(struct aml_buf *b, uint8_t nelements);
void aml_end(struct aml_buf *b, size_t mark);
/* Buffer whose bytes are appended after begin: BufferSize is only known at the end. */
size_t aml_buffer_begin(struct aml_buf *b);
void aml_buffer_end(struct aml_buf *b, size_t mark);

/* Name(name, <object appended next by the caller>) and the common cases. */
void aml_name(struct aml_buf *b, const char *name);
void aml_name_integer(struct aml_buf *b, const char *name, uint64_t value);
void aml_name_string(struct aml_buf *b, const char *name, const char *s);
void aml_name_eisaid(struct aml_buf *b, const char *name, const char *id);

/* Notify(target, value) */
void aml_notify(struct aml_buf *b, const char *target, uint64_t value);

/*
 * Method bodies (§20.2.5.3, §20.2.5.4). These write only the opcode; the caller appends the
 * operands next, as for aml_name(): LEqual takes two (LEqual(Arg0, 9) is aml_lequal,
 * aml_arg(0), aml_integer(9)), Return one. If(predicate) { body } is aml_if_begin, the
 * predicate, the body, then aml_end. ArgN is Arg0..Arg6; a larger n fails the buffer.
 */
void aml_arg(struct aml_buf *b, unsigned n);
void aml_lequal(struct aml_buf *b);
size_t aml_if_begin(struct aml_buf *b);
void aml_return(struct aml_buf *b);

/*
 * Resource templates (§6.4): a Buffer holding resource descriptors and an End Tag.
 * aml_resource_template_end() appends the End Tag with a checksum that makes the template's
 * bytes sum to zero, then closes the Buffer.
 */
size_t aml_resource_template_begin(struct aml_buf *b);
void aml_resource_template_end(struct aml_buf *b, size_t mark);
/* IO (Decode16, min, max, alignment, length) — §6.4.2.5 */
void aml_res_io16(struct aml_buf *b, uint16_t min, uint16_t max, uint8_t alignment, uint8_t length);
/* IRQNoFlags () {irq}: ISA IRQ 0-15, edge, active high, exclusive — §6.4.2.1 */
void aml_res_irq_noflags(struct aml_buf *b, unsigned irq);
/* Memory32Fixed (ReadWrite/ReadOnly, base, length) — §6.4.3.4 */
void aml_res_memory32_fixed(struct aml_buf *b, bool writable, uint32_t base, uint32_t length);

/* Extended Interrupt descriptor flags (§6.4.3.6, byte 3). Zero means ResourceProducer, Level,
 * ActiveHigh, Exclusive, not wake capable. */
#define AML_INT_CONSUMER   0x01
#define AML_INT_EDGE       0x02
#define AML_INT_ACTIVE_LOW 0x04
#define AML_INT_SHARED     0x08
#define AML_INT_WAKE       0x10
/* Interrupt (flags...) {gsi} with one interrupt number and no resource source. */
void aml_res_interrupt(struct aml_buf *b, uint8_t flags, uint32_t gsi);

#endif
