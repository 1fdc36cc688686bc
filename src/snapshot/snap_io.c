/* File helpers for the snapshot files (snap_io.h): whole pread/pwrite, the crash-safe
 * PATH.tmp -> PATH commit, and a word-wise zero-page test (RAM images are mostly zero). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kiln/util/bytes.h"

#include "snap_io.h"

int snap_pwrite_all(int fd, const void *buf, size_t len, uint64_t off, const char *path,
                    struct error *err)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int code = n < 0 ? -errno : -EIO;
            return error_fmt(err, code, "%s: writing %zu bytes at offset %llu: %s", path, len,
                             (unsigned long long)off, strerror(-code));
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

int snap_pread_all(int fd, void *buf, size_t len, uint64_t off, const char *path, struct error *err)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return error_fmt(err, -errno, "%s: reading at offset %llu: %s", path,
                             (unsigned long long)off, strerror(errno));
        if (n == 0)
            return error_fmt(err, -EIO, "%s: ends at offset %llu (expected %zu more bytes)", path,
                             (unsigned long long)off, len);
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

int snap_tmp_path(const char *path, char *out, size_t out_size, struct error *err)
{
    int n = snprintf(out, out_size, "%s.tmp", path);
    if (n < 0 || (size_t)n >= out_size)
        return error_fmt(err, -ENAMETOOLONG, "%s: path too long (at most %zu characters)", path,
                         out_size - 5);
    return 0;
}

int snap_create_tmp(const char *tmp_path, struct error *err)
{
    if (unlink(tmp_path) < 0 && errno != ENOENT)
        return error_fmt(err, -errno, "%s: removing a stale one: %s", tmp_path, strerror(errno));
    int fd = open(tmp_path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return error_fmt(err, -errno, "%s: creating it: %s", tmp_path, strerror(errno));
    return fd;
}

/* The rename is only durable once the folder holding the new name is on disk too. */
static int fsync_parent(const char *path, struct error *err)
{
    char copy[4096];
    if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy))
        return error_fmt(err, -ENAMETOOLONG, "%s: path too long", path);
    const char *dir = dirname(copy);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return error_fmt(err, -errno, "%s: opening its folder to sync it: %s", path,
                         strerror(errno));
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    if (rc < 0)
        return error_fmt(err, rc, "%s: syncing its folder: %s", path, strerror(-rc));
    return 0;
}

int snap_commit(int fd, const char *tmp_path, const char *path, struct error *err)
{
    if (fsync(fd) < 0)
        return error_fmt(err, -errno, "%s: fsync: %s", tmp_path, strerror(errno));
    if (rename(tmp_path, path) < 0)
        return error_fmt(err, -errno, "%s: renaming %s to it: %s", path, tmp_path, strerror(errno));
    return fsync_parent(path, err);
}

bool snap_page_is_zero(const uint8_t *page)
{
    uint64_t any = 0;
    for (size_t i = 0; i < SNAP_PAGE_SIZE; i += sizeof(uint64_t)) {
        uint64_t word;
        memcpy(&word, page + i, sizeof(word));
        any |= word;
    }
    return any == 0;
}

long snap_find_control_char(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f)
            return (long)i;
    }
    return -1;
}

int snap_check_text_field(const void *field, size_t size, const char *label, const char *what,
                          struct error *err)
{
    const char *text = field;
    const char *nul = memchr(text, 0, size);
    if (!nul)
        return error_fmt(err, -EINVAL, "%s: %s has no NUL in its %zu bytes", label, what, size);
    size_t len = (size_t)(nul - text);
    if (!bytes_all_zero(nul, size - len))
        return error_fmt(err, -EINVAL, "%s: nonzero bytes after %s", label, what);
    long bad = snap_find_control_char(text, len);
    if (bad >= 0)
        return error_fmt(err, -EINVAL, "%s: %s has byte 0x%02x at offset %ld (expected text)",
                         label, what, (unsigned char)text[bad], bad);
    return 0;
}
