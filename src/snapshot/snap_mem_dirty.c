/* Diff memory files (kiln/snapshot/snap_mem.h): memory.diff holds the pages dirtied since the
 * base, memory.dirty which ones (a dirtied page now zero is a hole, like an untouched one). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/snapshot/crc32.h"
#include "kiln/snapshot/snap_mem.h"
#include "snap_io.h"
#include "snap_mem_internal.h"

/* memory.dirty: header, bitmap words, trailer (docs/snapshots.md). */
#define DIRTY_VERSION     1u
#define DIRTY_HEADER_SIZE 32u /* magic, version u32, zero u32, memory size u64, dirty pages u64 */
#define DIRTY_TRAILER     8u  /* zero u32, CRC-32 u32 of everything before */
#define MERGE_CHUNK_PAGES 256u

static bool page_dirty(const uint64_t *dirty, uint64_t page)
{
    return (dirty[page / 64] >> (page % 64)) & 1;
}

/* The next run of dirty pages at or after *page, before end: [*page, *run_end). False if none. */
static bool next_dirty_run(const uint64_t *dirty, uint64_t end, uint64_t *page, uint64_t *run_end)
{
    uint64_t p = *page;
    while (p < end && !page_dirty(dirty, p))
        p++;
    if (p >= end)
        return false;
    uint64_t q = p + 1;
    while (q < end && page_dirty(dirty, q))
        q++;
    *page = p;
    *run_end = q;
    return true;
}

static uint64_t bitmap_words(uint64_t pages)
{
    return (pages + 63) / 64;
}

static int write_bitmap(const char *path, uint64_t size, const uint64_t *dirty,
                        uint64_t dirty_pages, struct error *err)
{
    uint64_t words = bitmap_words(size / SNAP_MEM_PAGE_SIZE);
    size_t file_size = DIRTY_HEADER_SIZE + words * 8 + DIRTY_TRAILER;
    uint8_t *buf = calloc(1, file_size);
    if (!buf)
        return error_fmt(err, -ENOMEM, "%s: no memory for %zu bytes", path, file_size);
    memcpy(buf, SNAP_DIRTY_MAGIC, 8);
    snap_put_le32(buf + 8, DIRTY_VERSION);
    snap_put_le64(buf + 16, size);
    snap_put_le64(buf + 24, dirty_pages);
    uint64_t pages = size / SNAP_MEM_PAGE_SIZE;
    for (uint64_t page = 0; page < pages; page++)
        if (page_dirty(dirty, page)) /* copies only the bits of real pages */
            buf[DIRTY_HEADER_SIZE + page / 8] |= (uint8_t)(1u << (page % 8));
    snap_put_le32(buf + file_size - 4, crc32_update(0, buf, file_size - 4));

    char tmp_path[4096 + 8];
    int rc = snap_tmp_path(path, tmp_path, sizeof(tmp_path), err);
    int fd = -1;
    if (rc == 0) {
        fd = snap_create_tmp(tmp_path, err);
        if (fd < 0)
            rc = fd;
    }
    if (rc == 0)
        rc = snap_pwrite_all(fd, buf, file_size, 0, tmp_path, err);
    if (rc == 0)
        rc = snap_commit(fd, tmp_path, path, err);
    if (fd >= 0) {
        close(fd);
        if (rc < 0)
            unlink(tmp_path);
    }
    free(buf);
    return rc;
}

/* Reads and checks memory.dirty: *bitmap (malloc'd words, bit i = page i) and the memory size
 * it is for. expected_size 0 takes the file's. */
static int read_bitmap(const char *path, uint64_t expected_size, uint64_t **bitmap,
                       uint64_t *mem_size, struct error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return error_fmt(err, -errno, "dirty bitmap %s: %s", path, strerror(errno));
    struct stat st;
    uint8_t hdr[DIRTY_HEADER_SIZE];
    uint8_t *buf = NULL;
    int rc = 0;
    if (fstat(fd, &st) < 0) {
        rc = error_fmt(err, -errno, "dirty bitmap %s: %s", path, strerror(errno));
        goto out;
    }
    if ((uint64_t)st.st_size < DIRTY_HEADER_SIZE + DIRTY_TRAILER) {
        rc = error_fmt(err, -EINVAL, "dirty bitmap %s: truncated (%lld bytes, at least %u)", path,
                       (long long)st.st_size, DIRTY_HEADER_SIZE + DIRTY_TRAILER);
        goto out;
    }
    rc = snap_pread_all(fd, hdr, sizeof(hdr), 0, path, err);
    if (rc < 0)
        goto out;
    uint64_t size = snap_get_le64(hdr + 16);
    if (memcmp(hdr, SNAP_DIRTY_MAGIC, 8) != 0) {
        rc = error_fmt(err, -EINVAL, "dirty bitmap %s: not a kiln dirty bitmap (expected \"%s\")",
                       path, SNAP_DIRTY_MAGIC);
    } else if (snap_get_le32(hdr + 8) != DIRTY_VERSION) {
        rc = error_fmt(err, -EINVAL, "dirty bitmap %s: format version %u (this kiln reads %u)",
                       path, snap_get_le32(hdr + 8), DIRTY_VERSION);
    } else if (size == 0 || size % SNAP_MEM_PAGE_SIZE != 0 || size > (1ull << 52)) {
        rc = error_fmt(err, -EINVAL,
                       "dirty bitmap %s: memory size %llu is not a multiple of %u up to 4 PiB",
                       path, (unsigned long long)size, SNAP_MEM_PAGE_SIZE);
    } else if (expected_size && size != expected_size) {
        rc = error_fmt(err, -EINVAL, "dirty bitmap %s: for %llu bytes of memory (expected %llu)",
                       path, (unsigned long long)size, (unsigned long long)expected_size);
    }
    if (rc < 0)
        goto out;
    uint64_t pages = size / SNAP_MEM_PAGE_SIZE, words = bitmap_words(pages);
    uint64_t file_size = DIRTY_HEADER_SIZE + words * 8 + DIRTY_TRAILER;
    if ((uint64_t)st.st_size != file_size) {
        rc = error_fmt(err, -EINVAL, "dirty bitmap %s: %lld bytes (expected %llu for %llu pages)",
                       path, (long long)st.st_size, (unsigned long long)file_size,
                       (unsigned long long)pages);
        goto out;
    }
    buf = malloc(file_size);
    if (!buf) {
        rc = error_fmt(err, -ENOMEM, "dirty bitmap %s: no memory", path);
        goto out;
    }
    rc = snap_pread_all(fd, buf, file_size, 0, path, err);
    if (rc < 0)
        goto out;
    uint32_t stored = snap_get_le32(buf + file_size - 4);
    uint32_t computed = crc32_update(0, buf, file_size - 4);
    if (stored != computed) {
        rc = error_fmt(err, -EINVAL,
                       "dirty bitmap %s: CRC mismatch, the file is damaged (stored 0x%08x, "
                       "computed 0x%08x)",
                       path, stored, computed);
        goto out;
    }
    if (snap_get_le32(buf + 12) != 0 || snap_get_le32(buf + file_size - 8) != 0) {
        rc = error_fmt(err, -EINVAL, "dirty bitmap %s: nonzero padding", path);
        goto out;
    }
    /* The words, over the file's bytes: word w is written below the bytes still to be read. */
    uint64_t *bits = (uint64_t *)buf;
    uint64_t set = 0;
    for (uint64_t w = 0; w < words; w++) {
        bits[w] = snap_get_le64(buf + DIRTY_HEADER_SIZE + w * 8);
        set += (uint64_t)__builtin_popcountll(bits[w]);
    }
    if (pages % 64 && (bits[words - 1] >> (pages % 64)) != 0) {
        rc = error_fmt(err, -EINVAL, "dirty bitmap %s: bits set past the last of %llu pages", path,
                       (unsigned long long)pages);
        goto out;
    }
    if (set != snap_get_le64(hdr + 24)) {
        rc = error_fmt(err, -EINVAL, "dirty bitmap %s: %llu bits set, the header says %llu", path,
                       (unsigned long long)set, (unsigned long long)snap_get_le64(hdr + 24));
        goto out;
    }
    *bitmap = bits;
    *mem_size = size;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

int snap_mem_save_dirty(const char *path, const char *bitmap_path, const uint8_t *ram,
                        uint64_t size, const uint64_t *dirty, struct snap_mem_stats *st,
                        struct error *err)
{
    struct snap_mem_stats local;
    if (!st)
        st = &local;
    memset(st, 0, sizeof(*st));
    int rc = snap_mem_check_size(path, size, err);
    if (rc < 0)
        return rc;
    char tmp_path[4096 + 8];
    int fd = snap_mem_create_tmp(path, tmp_path, sizeof(tmp_path), size, err);
    if (fd < 0)
        return fd;
    uint64_t pages = size / SNAP_MEM_PAGE_SIZE, page = 0, run_end;
    while (rc == 0 && next_dirty_run(dirty, pages, &page, &run_end)) {
        st->pages += run_end - page;
        rc = snap_mem_write_pages(fd, tmp_path, ram, page, run_end - page, st, err);
        page = run_end;
    }
    if (rc == 0)
        rc = snap_commit(fd, tmp_path, path, err);
    close(fd);
    if (rc < 0) {
        unlink(tmp_path);
        return rc;
    }
    return write_bitmap(bitmap_path, size, dirty, st->pages, err);
}

/* Writes buf (count pages for base pages [first, first+count)) into the base: non-zero runs
 * as data, zero runs as holes (or zeroes where holes cannot be punched). */
static int merge_chunk(int base_fd, const char *base_path, const uint8_t *buf, uint64_t first,
                       uint64_t count, struct error *err)
{
    uint64_t i = 0;
    while (i < count) {
        bool zero = snap_page_is_zero(buf + i * SNAP_MEM_PAGE_SIZE);
        uint64_t j = i + 1;
        while (j < count && snap_page_is_zero(buf + j * SNAP_MEM_PAGE_SIZE) == zero)
            j++;
        uint64_t off = (first + i) * SNAP_MEM_PAGE_SIZE, len = (j - i) * SNAP_MEM_PAGE_SIZE;
        bool written = false;
        if (zero) {
            if (fallocate(base_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
                          (off_t)len) == 0)
                written = true;
            else if (errno != EOPNOTSUPP)
                return error_fmt(err, -errno, "%s: punching a hole at %llu: %s", base_path,
                                 (unsigned long long)off, strerror(errno));
        }
        if (!written) {
            int rc =
                snap_pwrite_all(base_fd, buf + i * SNAP_MEM_PAGE_SIZE, len, off, base_path, err);
            if (rc < 0)
                return rc;
        }
        i = j;
    }
    return 0;
}

int snap_mem_merge(const char *base_path, const char *diff_path, const char *bitmap_path,
                   struct error *err)
{
    uint64_t *dirty = NULL, size = 0;
    int rc = read_bitmap(bitmap_path, 0, &dirty, &size, err);
    if (rc < 0)
        return rc;
    int base_fd = -1, diff_fd = -1;
    uint8_t *buf = NULL;
    base_fd = snap_mem_open_sized(base_path, O_RDWR, size, "base memory file", err);
    if (base_fd < 0) {
        rc = base_fd;
        goto out;
    }
    diff_fd = snap_mem_open_sized(diff_path, O_RDONLY, size, "diff memory file", err);
    if (diff_fd < 0) {
        rc = diff_fd;
        goto out;
    }
    buf = malloc(MERGE_CHUNK_PAGES * SNAP_MEM_PAGE_SIZE);
    if (!buf) {
        rc = error_fmt(err, -ENOMEM, "%s: no memory to merge", base_path);
        goto out;
    }
    uint64_t pages = size / SNAP_MEM_PAGE_SIZE, page = 0, run_end;
    while (rc == 0 && next_dirty_run(dirty, pages, &page, &run_end)) {
        if (run_end - page > MERGE_CHUNK_PAGES)
            run_end = page + MERGE_CHUNK_PAGES;
        uint64_t count = run_end - page;
        rc = snap_pread_all(diff_fd, buf, count * SNAP_MEM_PAGE_SIZE, page * SNAP_MEM_PAGE_SIZE,
                            diff_path, err);
        if (rc == 0)
            rc = merge_chunk(base_fd, base_path, buf, page, count, err);
        page = run_end;
    }
    if (rc == 0 && fsync(base_fd) < 0)
        rc = error_fmt(err, -errno, "%s: fsync: %s", base_path, strerror(errno));
out:
    free(buf);
    if (diff_fd >= 0)
        close(diff_fd);
    if (base_fd >= 0)
        close(base_fd);
    free(dirty);
    return rc;
}

int snap_mem_apply_dirty(const char *diff_path, const char *bitmap_path, uint8_t *ram,
                         uint64_t size, struct error *err)
{
    uint64_t *dirty = NULL, file_size = 0;
    int rc = read_bitmap(bitmap_path, size, &dirty, &file_size, err);
    if (rc < 0)
        return rc;
    int fd = snap_mem_open_sized(diff_path, O_RDONLY, size, "diff memory file", err);
    if (fd < 0) {
        free(dirty);
        return fd;
    }
    uint64_t pages = size / SNAP_MEM_PAGE_SIZE, page = 0, run_end;
    while (rc == 0 && next_dirty_run(dirty, pages, &page, &run_end)) {
        uint64_t off = page * SNAP_MEM_PAGE_SIZE;
        rc = snap_pread_all(fd, ram + off, (run_end - page) * SNAP_MEM_PAGE_SIZE, off, diff_path,
                            err);
        page = run_end;
    }
    close(fd);
    free(dirty);
    return rc;
}

int snap_mem_merge_bitmaps(const char *into_path, const char *from_path, struct error *err)
{
    uint64_t *into = NULL, *from = NULL, into_size = 0, from_size = 0;
    int rc = read_bitmap(into_path, 0, &into, &into_size, err);
    if (rc == 0)
        rc = read_bitmap(from_path, into_size, &from, &from_size, err);
    if (rc == 0) {
        uint64_t pages = into_size / SNAP_MEM_PAGE_SIZE, set = 0;
        for (uint64_t w = 0; w < bitmap_words(pages); w++) {
            into[w] |= from[w];
            set += (uint64_t)__builtin_popcountll(into[w]);
        }
        rc = write_bitmap(into_path, into_size, into, set, err);
    }
    free(into);
    free(from);
    return rc;
}
