/* Writing a state file (kiln/snapshot/snap_state.h): sections are gathered in memory so the
 * header can carry the final size and count, then written to PATH.tmp and renamed to PATH. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln/snapshot/crc32.h"
#include "kiln/snapshot/snap_state.h"
#include "snap_io.h"
#include "snap_state_layout.h"

/* Makes room for extra more bytes (zeroed), within the file's maximum size. */
static int writer_reserve(struct snap_writer *w, uint64_t extra, struct error *err)
{
    uint64_t need = (uint64_t)w->len + extra + SNAP_STATE_TRAILER_SIZE;
    if (need > SNAP_STATE_MAX_SIZE)
        return error_fmt(err, -EINVAL, "%s: the state would exceed %u bytes", w->path,
                         SNAP_STATE_MAX_SIZE);
    if (need > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < need)
            cap *= 2;
        uint8_t *buf = realloc(w->buf, cap);
        if (!buf)
            return error_fmt(err, -ENOMEM, "%s: no memory for %zu bytes of state", w->path, cap);
        memset(buf + w->cap, 0, cap - w->cap);
        w->buf = buf;
        w->cap = cap;
    }
    return 0;
}

static void put_cpu_id(uint8_t *hdr, const struct snap_cpu_id *cpu)
{
    /* Only the string: the field stays zero after it, as the reader demands. */
    memcpy(hdr + HDR_CPU_VENDOR, cpu->vendor, strnlen(cpu->vendor, sizeof(cpu->vendor) - 1));
    const uint32_t words[8] = {cpu->leaf1_ecx, cpu->leaf1_edx, cpu->leaf7_ebx, cpu->leaf7_ecx,
                               cpu->leaf7_edx, cpu->ext1_ecx,  cpu->ext1_edx,  0};
    for (int i = 0; i < 8; i++)
        snap_put_le32(hdr + HDR_CPU_WORDS + 4 * i, words[i]);
}

/* The header, in a fresh buffer; path names the state in messages. */
static int writer_begin(struct snap_writer *w, const char *path, const struct snap_info *info,
                        struct error *err)
{
    memset(w, 0, sizeof(*w));
    w->fd = -1;
    if (strlen(path) >= sizeof(w->path))
        return error_fmt(err, -ENAMETOOLONG, "%s: path too long", path);
    strcpy(w->path, path);
    if (info->flags & ~SNAP_FLAG_DIFF)
        return error_fmt(err, -EINVAL, "%s: unknown snapshot flags 0x%x", path, info->flags);
    int rc = writer_reserve(w, SNAP_STATE_HEADER_SIZE, err);
    if (rc < 0)
        return rc;
    uint8_t *hdr = w->buf;
    memcpy(hdr + HDR_MAGIC, SNAP_STATE_MAGIC, 8);
    snap_put_le32(hdr + HDR_VERSION, SNAP_STATE_VERSION);
    snap_put_le32(hdr + HDR_HEADER_SIZE, SNAP_STATE_HEADER_SIZE);
    snap_put_le64(hdr + HDR_MEMORY_SIZE, info->memory_size);
    snap_put_le32(hdr + HDR_FLAGS, info->flags);
    strncpy((char *)hdr + HDR_KILN_VERSION, KILN_VERSION, 31);
    put_cpu_id(hdr, &info->cpu);
    w->len = SNAP_STATE_HEADER_SIZE;
    w->open = true;
    return 0;
}

int snap_writer_open(struct snap_writer *w, const char *path, const struct snap_info *info,
                     struct error *err)
{
    int rc = writer_begin(w, path, info, err);
    if (rc == 0)
        rc = snap_tmp_path(path, w->tmp_path, sizeof(w->tmp_path), err);
    if (rc == 0) {
        w->fd = snap_create_tmp(w->tmp_path, err);
        rc = w->fd < 0 ? w->fd : 0;
    }
    if (rc < 0) {
        w->fd = -1;
        snap_writer_abort(w);
    }
    return rc;
}

int snap_writer_open_memory(struct snap_writer *w, const char *label, const struct snap_info *info,
                            struct error *err)
{
    int rc = writer_begin(w, label, info, err);
    if (rc < 0)
        snap_writer_abort(w);
    return rc;
}

static bool writer_has(const struct snap_writer *w, const char *name, int32_t slot)
{
    size_t off = SNAP_STATE_HEADER_SIZE;
    for (uint32_t i = 0; i < w->count; i++) {
        const uint8_t *sec = w->buf + off;
        if (strcmp((const char *)sec + SEC_NAME, name) == 0 &&
            (int32_t)snap_get_le32(sec + SEC_SLOT) == slot)
            return true;
        off += SEC_SPAN(snap_get_le32(sec + SEC_SIZE));
    }
    return false;
}

int snap_writer_add(struct snap_writer *w, const char *name, int32_t slot, const void *data,
                    uint32_t size, struct error *err)
{
    if (!w->open)
        return error_fmt(err, -EINVAL, "%s: section '%s' added to a closed writer", w->path, name);
    size_t name_len = strlen(name);
    if (name_len == 0 || name_len > SNAP_SECTION_NAME_MAX)
        return error_fmt(err, -EINVAL, "%s: section name '%s' is %zu characters (expected 1 to %u)",
                         w->path, name, name_len, SNAP_SECTION_NAME_MAX);
    if (snap_find_control_char(name, name_len) >= 0)
        return error_fmt(err, -EINVAL, "%s: section name has a control character (expected text)",
                         w->path);
    if (w->count >= SNAP_MAX_SECTIONS)
        return error_fmt(err, -EINVAL, "%s: more than %u sections", w->path, SNAP_MAX_SECTIONS);
    if (writer_has(w, name, slot))
        return error_fmt(err, -EINVAL, "%s: section '%s' slot %d added twice", w->path, name,
                         (int)slot);
    if (size > 0 && !data)
        return error_fmt(err, -EINVAL, "%s: section '%s' of %u bytes has no data", w->path, name,
                         size);
    int rc = writer_reserve(w, SEC_SPAN(size), err);
    if (rc < 0)
        return rc;
    uint8_t *sec = w->buf + w->len;
    memcpy(sec + SEC_NAME, name, name_len);
    snap_put_le32(sec + SEC_SLOT, (uint32_t)slot);
    snap_put_le32(sec + SEC_SIZE, size);
    if (size)
        memcpy(sec + SNAP_SECTION_HEADER_SIZE, data, size);
    w->len += SEC_SPAN(size);
    w->count++;
    return 0;
}

void snap_writer_abort(struct snap_writer *w)
{
    if (w->fd >= 0) {
        close(w->fd);
        unlink(w->tmp_path);
        w->fd = -1;
    }
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
    w->open = false;
}

/* The header's size and count, and the trailer's CRC: the state is whole. */
static size_t writer_seal(struct snap_writer *w)
{
    /* writer_reserve always leaves room for the trailer, zeroed. */
    size_t file_size = w->len + SNAP_STATE_TRAILER_SIZE;
    snap_put_le64(w->buf + HDR_FILE_SIZE, file_size);
    snap_put_le32(w->buf + HDR_SECTION_COUNT, w->count);
    uint32_t crc = crc32_update(0, w->buf, file_size - 4);
    snap_put_le32(w->buf + file_size - 4, crc);
    return file_size;
}

int snap_writer_take(struct snap_writer *w, uint8_t **bytes, size_t *len, struct error *err)
{
    if (!w->open || w->fd >= 0) {
        snap_writer_abort(w);
        return error_fmt(err, -EINVAL, "%s: taking the bytes of a closed or file writer", w->path);
    }
    *len = writer_seal(w);
    *bytes = w->buf;
    w->buf = NULL;
    snap_writer_abort(w);
    return 0;
}

int snap_writer_finish(struct snap_writer *w, struct error *err)
{
    if (!w->open || w->fd < 0) {
        snap_writer_abort(w);
        return error_fmt(err, -EINVAL, "%s: finishing a closed writer", w->path);
    }
    size_t file_size = writer_seal(w);

    int rc = snap_pwrite_all(w->fd, w->buf, file_size, 0, w->tmp_path, err);
    if (rc == 0)
        rc = snap_commit(w->fd, w->tmp_path, w->path, err);
    if (rc == 0) {
        close(w->fd);
        w->fd = -1;
    }
    snap_writer_abort(w); /* after a failure: removes the .tmp */
    return rc;
}
