/* File helpers the snapshot files share (internal to src/snapshot/): whole reads and writes
 * at an offset, the PATH.tmp -> PATH commit, and the zero-page test. */
#ifndef KILN_SNAPSHOT_SNAP_IO_H
#define KILN_SNAPSHOT_SNAP_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/util/error.h"

#define SNAP_PAGE_SIZE 4096u

/* Writes all len bytes at offset off (retrying short writes and EINTR); errors name path. */
int snap_pwrite_all(int fd, const void *buf, size_t len, uint64_t off, const char *path,
                    struct error *err);
/* Reads exactly len bytes at off; reaching the end of the file first is -EIO ("ends at ..."). */
int snap_pread_all(int fd, void *buf, size_t len, uint64_t off, const char *path,
                   struct error *err);
/* out = path + ".tmp"; -ENAMETOOLONG if it does not fit. */
int snap_tmp_path(const char *path, char *out, size_t out_size, struct error *err);
/* Creates tmp_path afresh (mode 0600), removing a stale one left by a crash first; a symlink
 * there is removed, never followed. Returns the fd (read-write) or -errno with one line. */
int snap_create_tmp(const char *tmp_path, struct error *err);
/* Makes tmp_path (open as fd) durable under path: fsync, rename, fsync of the folder. */
int snap_commit(int fd, const char *tmp_path, const char *path, struct error *err);
/* Little-endian fields of the files' headers, at any alignment. */
static inline void snap_put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void snap_put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t snap_get_le32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static inline uint64_t snap_get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Checks a text field of size bytes from a snapshot: a string with a NUL inside the field,
 * zeroes after it, and no control character (so an error line quoting it stays one line).
 * 0, or -EINVAL and one line "LABEL: WHAT ...". */
int snap_check_text_field(const void *field, size_t size, const char *label, const char *what,
                          struct error *err);
/* The first control character (below 0x20, or 0x7f) in the len bytes at text, or -1. */
long snap_find_control_char(const char *text, size_t len);

/* True if the SNAP_PAGE_SIZE bytes at page are all zero. */
bool snap_page_is_zero(const uint8_t *page);

#endif
