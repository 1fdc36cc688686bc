/* Reading a state file (kiln/snapshot/snap_state.h): its bytes are hostile until checked, and
 * nothing is read outside them nor allocated beyond the file's size. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/snapshot/crc32.h"
#include "kiln/snapshot/snap_state.h"
#include "kiln/util/bytes.h"
#include "snap_io.h"
#include "snap_state_layout.h"

/* The smallest state file: a header, no section, the trailer. */
#define STATE_MIN_SIZE (SNAP_STATE_HEADER_SIZE + SNAP_STATE_TRAILER_SIZE)

/* What comes before the CRC can be checked: magic, version, header size, file size. */
static int check_envelope(const uint8_t *b, size_t len, const char *label, struct error *err)
{
    size_t magic_len = len < 8 ? len : 8;
    if (memcmp(b, SNAP_STATE_MAGIC, magic_len) != 0)
        return error_fmt(err, -EINVAL,
                         "%s: not a kiln snapshot state file (expected it to start with \"%s\")",
                         label, SNAP_STATE_MAGIC);
    if (len < STATE_MIN_SIZE)
        return error_fmt(err, -EINVAL,
                         "%s: truncated (file is %zu bytes, a state file is at least %u)", label,
                         len, STATE_MIN_SIZE);
    uint32_t version = snap_get_le32(b + HDR_VERSION);
    if (version != SNAP_STATE_VERSION)
        return error_fmt(err, -EINVAL, "%s: format version %u (this kiln reads %u)", label, version,
                         SNAP_STATE_VERSION);
    uint32_t header_size = snap_get_le32(b + HDR_HEADER_SIZE);
    if (header_size != SNAP_STATE_HEADER_SIZE)
        return error_fmt(err, -EINVAL, "%s: header is %u bytes (format %u has %u)", label,
                         header_size, SNAP_STATE_VERSION, SNAP_STATE_HEADER_SIZE);
    uint64_t file_size = snap_get_le64(b + HDR_FILE_SIZE);
    if (len < file_size)
        return error_fmt(err, -EINVAL, "%s: truncated (file is %zu bytes, the header says %llu)",
                         label, len, (unsigned long long)file_size);
    if (len > file_size)
        return error_fmt(
            err, -EINVAL, "%s: %llu bytes after the end of the file the header gives (%llu bytes)",
            label, (unsigned long long)(len - file_size), (unsigned long long)file_size);
    uint32_t stored = snap_get_le32(b + len - 4);
    uint32_t computed = crc32_update(0, b, len - 4);
    if (stored != computed)
        return error_fmt(err, -EINVAL,
                         "%s: CRC mismatch, the file is damaged (stored 0x%08x, computed 0x%08x)",
                         label, stored, computed);
    return 0;
}

/* The header's fields after the CRC check: they are as written, unless written wrongly. */
static int read_header(struct snap_reader *r, struct error *err)
{
    const uint8_t *b = r->bytes;
    const char *label = r->label;
    struct snap_info *info = &r->info;
    memset(info, 0, sizeof(*info));
    info->memory_size = snap_get_le64(b + HDR_MEMORY_SIZE);
    info->flags = snap_get_le32(b + HDR_FLAGS);
    if (info->flags & ~SNAP_FLAG_DIFF)
        return error_fmt(err, -EINVAL, "%s: unknown flags 0x%x (expected only 0x%x, diff)", label,
                         info->flags, SNAP_FLAG_DIFF);
    r->count = snap_get_le32(b + HDR_SECTION_COUNT);
    if (r->count > SNAP_MAX_SECTIONS)
        return error_fmt(err, -EINVAL, "%s: %u sections (at most %u)", label, r->count,
                         SNAP_MAX_SECTIONS);
    int rc = snap_check_text_field(b + HDR_KILN_VERSION, sizeof(info->kiln_version), label,
                                   "the kiln version", err);
    if (rc < 0)
        return rc;
    memcpy(info->kiln_version, b + HDR_KILN_VERSION, sizeof(info->kiln_version));
    rc = snap_check_text_field(b + HDR_CPU_VENDOR, sizeof(info->cpu.vendor), label,
                               "the CPU vendor", err);
    if (rc < 0)
        return rc;
    memcpy(info->cpu.vendor, b + HDR_CPU_VENDOR, sizeof(info->cpu.vendor));
    uint32_t words[8];
    for (int i = 0; i < 8; i++)
        words[i] = snap_get_le32(b + HDR_CPU_WORDS + 4 * i);
    if (words[7] != 0 || !bytes_all_zero(b + HDR_RESERVED, 8))
        return error_fmt(err, -EINVAL, "%s: nonzero padding in the header", label);
    info->cpu.leaf1_ecx = words[0];
    info->cpu.leaf1_edx = words[1];
    info->cpu.leaf7_ebx = words[2];
    info->cpu.leaf7_ecx = words[3];
    info->cpu.leaf7_edx = words[4];
    info->cpu.ext1_ecx = words[5];
    info->cpu.ext1_edx = words[6];
    return 0;
}

/* Formats " slot N" (or nothing for -1) for messages. */
static const char *slot_text(int32_t slot, char *buf, size_t size)
{
    if (slot == -1)
        snprintf(buf, size, "%s", "");
    else
        snprintf(buf, size, " slot %d", (int)slot);
    return buf;
}

/* Walks the sections: each inside the file, named, padded with zeroes, not repeated. */
static int check_sections(const struct snap_reader *r, struct error *err)
{
    const uint8_t *b = r->bytes;
    const char *label = r->label;
    size_t end = r->len - SNAP_STATE_TRAILER_SIZE; /* where the sections must stop */
    size_t off = SNAP_STATE_HEADER_SIZE;
    char slot_buf[24];
    for (uint32_t i = 0; i < r->count; i++) {
        if (end - off < SNAP_SECTION_HEADER_SIZE)
            return error_fmt(err, -EINVAL,
                             "%s: section %u of %u at offset %zu runs past the end of the "
                             "sections (offset %zu)",
                             label, i, r->count, off, end);
        const uint8_t *sec = b + off;
        char what[32];
        snprintf(what, sizeof(what), "section %u's name", i);
        int rc = snap_check_text_field(sec + SEC_NAME, SEC_NAME_FIELD, label, what, err);
        if (rc < 0)
            return rc;
        const char *name = (const char *)sec + SEC_NAME;
        int32_t slot = (int32_t)snap_get_le32(sec + SEC_SLOT);
        if (name[0] == 0)
            return error_fmt(err, -EINVAL, "%s: section %u's name is empty", label, i);
        uint32_t size = snap_get_le32(sec + SEC_SIZE);
        if (SEC_SPAN(size) > end - off)
            return error_fmt(err, -EINVAL,
                             "%s: section '%s'%s of %u bytes at offset %zu runs past the end of "
                             "the sections (offset %zu)",
                             label, name, slot_text(slot, slot_buf, sizeof(slot_buf)), size, off,
                             end);
        size_t data_end = off + SNAP_SECTION_HEADER_SIZE + size;
        if (!bytes_all_zero(b + data_end, off + SEC_SPAN(size) - data_end))
            return error_fmt(err, -EINVAL, "%s: nonzero padding after section '%s'%s", label, name,
                             slot_text(slot, slot_buf, sizeof(slot_buf)));
        size_t other = SNAP_STATE_HEADER_SIZE;
        for (uint32_t j = 0; j < i; j++) {
            const uint8_t *prev = b + other;
            if ((int32_t)snap_get_le32(prev + SEC_SLOT) == slot &&
                strcmp((const char *)prev + SEC_NAME, name) == 0)
                return error_fmt(err, -EINVAL, "%s: section '%s'%s appears twice", label, name,
                                 slot_text(slot, slot_buf, sizeof(slot_buf)));
            other += SEC_SPAN(snap_get_le32(prev + SEC_SIZE));
        }
        off += SEC_SPAN(size);
    }
    if (off != end)
        return error_fmt(err, -EINVAL,
                         "%s: %zu bytes between the last of %u sections and the CRC (expected "
                         "none)",
                         label, end - off, r->count);
    if (!bytes_all_zero(b + end, 4))
        return error_fmt(err, -EINVAL, "%s: nonzero padding before the CRC", label);
    return 0;
}

/* Takes ownership of bytes (malloc'd, len bytes) and checks them. */
static int reader_take(struct snap_reader *r, uint8_t *bytes, size_t len, const char *label,
                       struct error *err)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->label, sizeof(r->label), "%s", label);
    r->bytes = bytes;
    r->len = len;
    int rc = check_envelope(bytes, len, r->label, err);
    if (rc == 0)
        rc = read_header(r, err);
    if (rc == 0)
        rc = check_sections(r, err);
    if (rc < 0)
        snap_reader_free(r);
    return rc;
}

int snap_reader_parse(struct snap_reader *r, const uint8_t *bytes, size_t len, const char *label,
                      struct error *err)
{
    memset(r, 0, sizeof(*r));
    if (len > SNAP_STATE_MAX_SIZE)
        return error_fmt(err, -EINVAL, "%s: %zu bytes (a state file is at most %u)", label, len,
                         SNAP_STATE_MAX_SIZE);
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return error_fmt(err, -ENOMEM, "%s: no memory for %zu bytes", label, len);
    if (len)
        memcpy(copy, bytes, len);
    return reader_take(r, copy, len, label, err);
}

int snap_reader_load(struct snap_reader *r, const char *path, struct error *err)
{
    memset(r, 0, sizeof(*r));
    char label[4096];
    snprintf(label, sizeof(label), "snapshot %s", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return error_fmt(err, -errno, "%s: %s", label, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0)
        rc = error_fmt(err, -errno, "%s: %s", label, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = error_fmt(err, -EINVAL, "%s: not a regular file", label);
    else if (st.st_size > SNAP_STATE_MAX_SIZE)
        rc = error_fmt(err, -EINVAL, "%s: %lld bytes (a state file is at most %u)", label,
                       (long long)st.st_size, SNAP_STATE_MAX_SIZE);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    size_t len = (size_t)st.st_size;
    uint8_t *bytes = malloc(len ? len : 1);
    if (!bytes) {
        close(fd);
        return error_fmt(err, -ENOMEM, "%s: no memory for %zu bytes", label, len);
    }
    rc = snap_pread_all(fd, bytes, len, 0, label, err);
    close(fd);
    if (rc < 0) {
        free(bytes);
        return rc;
    }
    return reader_take(r, bytes, len, label, err);
}

const void *snap_reader_find(const struct snap_reader *r, const char *name, int32_t slot,
                             uint32_t expected_size, struct error *err)
{
    char slot_buf[24];
    size_t off = SNAP_STATE_HEADER_SIZE;
    for (uint32_t i = 0; r->bytes && i < r->count; i++) {
        const uint8_t *sec = r->bytes + off;
        uint32_t size = snap_get_le32(sec + SEC_SIZE);
        if ((int32_t)snap_get_le32(sec + SEC_SLOT) == slot &&
            strcmp((const char *)sec + SEC_NAME, name) == 0) {
            if (size != expected_size) {
                error_fmt(err, -EINVAL,
                          "%s: section '%s'%s is %u bytes (expected %u: saved by another kiln "
                          "version?)",
                          r->label, name, slot_text(slot, slot_buf, sizeof(slot_buf)), size,
                          expected_size);
                return NULL;
            }
            return sec + SNAP_SECTION_HEADER_SIZE;
        }
        off += SEC_SPAN(size);
    }
    error_fmt(err, -ENOENT, "%s: no section '%s'%s", r->label, name,
              slot_text(slot, slot_buf, sizeof(slot_buf)));
    return NULL;
}

int snap_reader_section(const struct snap_reader *r, uint32_t index, struct snap_section *out)
{
    if (!r->bytes || index >= r->count)
        return -ENOENT;
    size_t off = SNAP_STATE_HEADER_SIZE;
    for (uint32_t i = 0; i < index; i++)
        off += SEC_SPAN(snap_get_le32(r->bytes + off + SEC_SIZE));
    const uint8_t *sec = r->bytes + off;
    out->name = (const char *)sec + SEC_NAME;
    out->slot = (int32_t)snap_get_le32(sec + SEC_SLOT);
    out->size = snap_get_le32(sec + SEC_SIZE);
    out->data = sec + SNAP_SECTION_HEADER_SIZE;
    return 0;
}

void snap_reader_free(struct snap_reader *r)
{
    free(r->bytes);
    r->bytes = NULL;
    r->len = 0;
    r->count = 0;
}
