/* The full memory file (kiln/snapshot/snap_mem.h): a sparse RAM image, written with holes for
 * zero pages and read back by data extents, so a mostly idle guest costs little disk and time. */
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/snapshot/snap_mem.h"
#include "snap_io.h"

#include "snap_mem_internal.h"

int snap_mem_check_size(const char *path, uint64_t size, struct error *err)
{
    if (size == 0 || size % SNAP_MEM_PAGE_SIZE != 0)
        return error_fmt(err, -EINVAL, "%s: memory size %llu is not a positive multiple of %u",
                         path, (unsigned long long)size, SNAP_MEM_PAGE_SIZE);
    return 0;
}

int snap_mem_create_tmp(const char *path, char *tmp_path, size_t tmp_size, uint64_t size,
                        struct error *err)
{
    int rc = snap_tmp_path(path, tmp_path, tmp_size, err);
    if (rc < 0)
        return rc;
    int fd = snap_create_tmp(tmp_path, err);
    if (fd < 0)
        return fd;
    if (ftruncate(fd, (off_t)size) < 0) {
        rc = error_fmt(err, -errno, "%s: setting its size to %llu: %s", tmp_path,
                       (unsigned long long)size, strerror(errno));
        close(fd);
        unlink(tmp_path);
        return rc;
    }
    return fd;
}

int snap_mem_write_pages(int fd, const char *path, const uint8_t *ram, uint64_t first,
                         uint64_t count, struct snap_mem_stats *st, struct error *err)
{
    uint64_t page = first, end = first + count;
    while (page < end) {
        if (snap_page_is_zero(ram + page * SNAP_MEM_PAGE_SIZE)) {
            page++;
            continue;
        }
        uint64_t run = page + 1;
        while (run < end && !snap_page_is_zero(ram + run * SNAP_MEM_PAGE_SIZE))
            run++;
        uint64_t off = page * SNAP_MEM_PAGE_SIZE, len = (run - page) * SNAP_MEM_PAGE_SIZE;
        int rc = snap_pwrite_all(fd, ram + off, len, off, path, err);
        if (rc < 0)
            return rc;
        st->data_pages += run - page;
        st->bytes_written += len;
        page = run;
    }
    return 0;
}

/* The pages of ram that source_fd (the file ram maps) has data for: what was never written
 * is a hole there and reads as zero, so only the data extents are scanned. Reading a hole
 * of a shared mapping would allocate it, growing the VMM by the whole of guest RAM. */
static int write_data_extents(int fd, const char *tmp_path, const uint8_t *ram, uint64_t size,
                              int source_fd, struct snap_mem_stats *st, struct error *err)
{
    uint64_t off = 0;
    while (off < size) {
        off_t data = lseek(source_fd, (off_t)off, SEEK_DATA);
        if (data < 0 && errno == ENXIO)
            return 0; /* holes to the end */
        if (data < 0)
            return error_fmt(err, -errno, "guest memory: finding data after offset %llu: %s",
                             (unsigned long long)off, strerror(errno));
        off_t hole = lseek(source_fd, data, SEEK_HOLE);
        if (hole < 0)
            return error_fmt(err, -errno, "guest memory: finding a hole after %lld: %s",
                             (long long)data, strerror(errno));
        uint64_t first = (uint64_t)data / SNAP_MEM_PAGE_SIZE;
        uint64_t end = ((uint64_t)hole < size ? (uint64_t)hole : size);
        uint64_t last = (end + SNAP_MEM_PAGE_SIZE - 1) / SNAP_MEM_PAGE_SIZE;
        int rc = snap_mem_write_pages(fd, tmp_path, ram, first, last - first, st, err);
        if (rc < 0)
            return rc;
        off = last * SNAP_MEM_PAGE_SIZE;
    }
    return 0;
}

int snap_mem_save(const char *path, const uint8_t *ram, uint64_t size, struct snap_mem_stats *st,
                  struct error *err)
{
    return snap_mem_save_from(path, ram, size, -1, st, err);
}

int snap_mem_write_from(const char *path, const uint8_t *ram, uint64_t size, int source_fd,
                        struct snap_mem_stats *st, struct snap_mem_pending *pending,
                        struct error *err)
{
    struct snap_mem_stats local;
    if (!st)
        st = &local;
    memset(st, 0, sizeof(*st));
    pending->fd = -1;
    int rc = snap_mem_check_size(path, size, err);
    if (rc < 0)
        return rc;
    if (snprintf(pending->path, sizeof(pending->path), "%s", path) >= (int)sizeof(pending->path))
        return error_fmt(err, -ENAMETOOLONG, "%s: path too long", path);
    int fd = snap_mem_create_tmp(path, pending->tmp_path, sizeof(pending->tmp_path), size, err);
    if (fd < 0)
        return fd;
    st->pages = size / SNAP_MEM_PAGE_SIZE;
    if (source_fd >= 0)
        rc = write_data_extents(fd, pending->tmp_path, ram, size, source_fd, st, err);
    else
        rc = snap_mem_write_pages(fd, pending->tmp_path, ram, 0, st->pages, st, err);
    if (rc < 0) {
        close(fd);
        unlink(pending->tmp_path);
        return rc;
    }
    pending->fd = fd;
    return 0;
}

int snap_mem_commit(struct snap_mem_pending *pending, struct error *err)
{
    int rc = snap_commit(pending->fd, pending->tmp_path, pending->path, err);
    close(pending->fd);
    pending->fd = -1;
    if (rc < 0)
        unlink(pending->tmp_path);
    return rc;
}

void snap_mem_pending_abort(struct snap_mem_pending *pending)
{
    if (pending->fd < 0)
        return;
    close(pending->fd);
    pending->fd = -1;
    unlink(pending->tmp_path);
}

int snap_mem_save_from(const char *path, const uint8_t *ram, uint64_t size, int source_fd,
                       struct snap_mem_stats *st, struct error *err)
{
    struct snap_mem_pending pending;
    int rc = snap_mem_write_from(path, ram, size, source_fd, st, &pending, err);
    return rc < 0 ? rc : snap_mem_commit(&pending, err);
}

int snap_mem_open_sized(const char *path, int flags, uint64_t expected_size, const char *what,
                        struct error *err)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return error_fmt(err, -errno, "%s %s: %s", what, path, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0)
        rc = error_fmt(err, -errno, "%s %s: %s", what, path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = error_fmt(err, -EINVAL, "%s %s: not a regular file", what, path);
    else if ((uint64_t)st.st_size != expected_size)
        rc = error_fmt(err, -EINVAL, "%s %s: %llu bytes (expected %llu, the guest's memory size)",
                       what, path, (unsigned long long)st.st_size,
                       (unsigned long long)expected_size);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

int snap_mem_open(const char *path, uint64_t expected_size, int *fd_out, struct error *err)
{
    int fd = snap_mem_open_sized(path, O_RDONLY, expected_size, "memory file", err);
    if (fd < 0)
        return fd;
    *fd_out = fd;
    return 0;
}

int snap_mem_copy_in(int fd, uint8_t *ram, uint64_t size, struct error *err)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return error_fmt(err, -errno, "memory file: %s", strerror(errno));
    if ((uint64_t)st.st_size != size)
        return error_fmt(err, -EINVAL, "memory file: %llu bytes (expected %llu)",
                         (unsigned long long)st.st_size, (unsigned long long)size);
    uint64_t off = 0;
    while (off < size) {
        off_t data = lseek(fd, (off_t)off, SEEK_DATA);
        if (data < 0 && errno == ENXIO)
            break; /* only holes from off to the end */
        uint64_t end;
        if (data < 0 && errno == EINVAL) {
            /* A file system without SEEK_DATA: read everything that is left. */
            data = (off_t)off;
            end = size;
        } else if (data < 0) {
            return error_fmt(err, -errno, "memory file: finding data after offset %llu: %s",
                             (unsigned long long)off, strerror(errno));
        } else {
            off_t hole = lseek(fd, data, SEEK_HOLE);
            if (hole < 0)
                return error_fmt(err, -errno, "memory file: finding a hole after %lld: %s",
                                 (long long)data, strerror(errno));
            end = (uint64_t)hole < size ? (uint64_t)hole : size;
        }
        int rc = snap_pread_all(fd, ram + data, end - (uint64_t)data, (uint64_t)data, "memory file",
                                err);
        if (rc < 0)
            return rc;
        off = end;
    }
    return 0;
}
