/* Unit tests for the snapshot memory files (snap_mem.h): the full image is sparse and reads
 * back equal (mmap and copy-in), and a diff saved, merged or applied over its base gives
 * exactly the new RAM, including dirtied pages that became zero. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "kiln/snapshot/snap_mem.h"
#include "snapshot_tmp.h"

#define PAGE      4096u
#define RAM_PAGES 4096u /* 16 MiB */
#define RAM_SIZE  ((uint64_t)RAM_PAGES * PAGE)

static uint8_t *ram_map(void)
{
    void *p = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    return p;
}

static void ram_unmap(uint8_t *ram)
{
    munmap(ram, RAM_SIZE);
}

/* A mostly idle guest: a few pages with data, one with a single byte at its very end. */
static void fill_sample(uint8_t *ram)
{
    for (uint32_t i = 0; i < 3 * PAGE; i++)
        ram[i] = (uint8_t)(i * 7 + 1);
    memset(ram + 100 * PAGE, 0xa5, PAGE);
    ram[2000 * PAGE + PAGE - 1] = 0x42;
    memcpy(ram + RAM_SIZE - 16, "last page here!", 16);
}

static uint8_t *read_file(const char *path, uint64_t size)
{
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, size, 0), (ssize_t)size);
    close(fd);
    return buf;
}

static void test_full_save_is_sparse_and_reads_back(void **state)
{
    struct snapshot_tmp *t = *state;
    char path[4200], tmp[4300];
    snapshot_tmp_file(t, "memory.kiln", path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    uint8_t *ram = ram_map();
    fill_sample(ram);
    struct snap_mem_stats st;
    struct error err = {{0}};
    assert_int_equal(snap_mem_save(path, ram, RAM_SIZE, &st, &err), 0);
    assert_int_equal(st.pages, RAM_PAGES);
    assert_int_equal(st.data_pages, 6);
    assert_int_equal(st.bytes_written, 6 * PAGE);

    struct stat sb;
    assert_int_equal(stat(tmp, &sb), -1);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, RAM_SIZE);
    assert_int_equal(sb.st_mode & 0777, 0600);
    /* 6 pages of data in a 16 MiB file: allocated blocks far below the size. */
    assert_true((uint64_t)sb.st_blocks * 512 <= 64 * PAGE);

    int fd = -1;
    assert_int_equal(snap_mem_open(path, RAM_SIZE, &fd, &err), 0);
    uint8_t *mapped = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    assert_true(mapped != MAP_FAILED);
    assert_memory_equal(mapped, ram, RAM_SIZE);
    munmap(mapped, RAM_SIZE);

    uint8_t *copy = ram_map();
    assert_int_equal(snap_mem_copy_in(fd, copy, RAM_SIZE, &err), 0);
    assert_memory_equal(copy, ram, RAM_SIZE);
    close(fd);
    ram_unmap(copy);
    ram_unmap(ram);
}

/* In two steps (the guest runs again between them): the pages are copied when written, so
 * RAM changed after the first step is not in the file; the file has its name only after the
 * commit, and an abort leaves nothing. */
static void test_write_then_commit(void **state)
{
    struct snapshot_tmp *t = *state;
    char path[4200], tmp[4300];
    snapshot_tmp_file(t, "memory.kiln", path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    uint8_t *ram = ram_map();
    fill_sample(ram);
    uint8_t *saved = malloc(RAM_SIZE);
    assert_non_null(saved);
    memcpy(saved, ram, RAM_SIZE);
    struct snap_mem_stats st;
    struct snap_mem_pending pending;
    struct error err = {{0}};
    struct stat sb;

    assert_int_equal(snap_mem_write_from(path, ram, RAM_SIZE, -1, &st, &pending, &err), 0);
    assert_int_equal(st.data_pages, 6);
    assert_int_equal(stat(path, &sb), -1); /* not named yet */
    assert_int_equal(stat(tmp, &sb), 0);
    memset(ram, 0x5a, 8 * PAGE); /* the guest runs on */
    assert_int_equal(snap_mem_commit(&pending, &err), 0);
    assert_int_equal(stat(tmp, &sb), -1);
    uint8_t *file = read_file(path, RAM_SIZE);
    assert_memory_equal(file, saved, RAM_SIZE);
    free(file);

    char other[4200];
    snapshot_tmp_file(t, "other.kiln", other, sizeof(other));
    assert_int_equal(snap_mem_write_from(other, ram, RAM_SIZE, -1, &st, &pending, &err), 0);
    snap_mem_pending_abort(&pending);
    snap_mem_pending_abort(&pending); /* twice is harmless */
    snprintf(tmp, sizeof(tmp), "%s.tmp", other);
    assert_int_equal(stat(tmp, &sb), -1);
    assert_int_equal(stat(other, &sb), -1);
    free(saved);
    ram_unmap(ram);
}

static void test_all_zero_and_all_data(void **state)
{
    struct snapshot_tmp *t = *state;
    char path[4200];
    snapshot_tmp_file(t, "memory.kiln", path, sizeof(path));
    uint8_t *ram = ram_map();
    struct snap_mem_stats st;
    struct error err = {{0}};
    assert_int_equal(snap_mem_save(path, ram, RAM_SIZE, &st, &err), 0);
    assert_int_equal(st.data_pages, 0);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_blocks, 0);
    int fd = -1;
    uint8_t *copy = ram_map();
    copy[5] = 0; /* touched, still zero */
    assert_int_equal(snap_mem_open(path, RAM_SIZE, &fd, &err), 0);
    assert_int_equal(snap_mem_copy_in(fd, copy, RAM_SIZE, &err), 0);
    assert_memory_equal(copy, ram, RAM_SIZE);
    close(fd);

    memset(ram, 0x11, RAM_SIZE);
    assert_int_equal(snap_mem_save(path, ram, RAM_SIZE, &st, &err), 0);
    assert_int_equal(st.data_pages, RAM_PAGES);
    assert_int_equal(snap_mem_open(path, RAM_SIZE, &fd, &err), 0);
    assert_int_equal(snap_mem_copy_in(fd, copy, RAM_SIZE, &err), 0);
    assert_memory_equal(copy, ram, RAM_SIZE);
    close(fd);
    ram_unmap(copy);
    ram_unmap(ram);
}

static void test_open_refusals(void **state)
{
    struct snapshot_tmp *t = *state;
    char path[4200], want[4400];
    snapshot_tmp_file(t, "memory.kiln", path, sizeof(path));
    struct error err = {{0}};
    int fd = -1;
    assert_int_equal(snap_mem_open(path, RAM_SIZE, &fd, &err), -ENOENT);
    snprintf(want, sizeof(want), "memory file %s: No such file or directory", path);
    assert_string_equal(err.msg, want);

    uint8_t *ram = ram_map();
    assert_int_equal(snap_mem_save(path, ram, RAM_SIZE / 2, NULL, &err), 0);
    assert_int_equal(snap_mem_open(path, RAM_SIZE, &fd, &err), -EINVAL);
    snprintf(want, sizeof(want),
             "memory file %s: 8388608 bytes (expected 16777216, the guest's memory size)", path);
    assert_string_equal(err.msg, want);
    assert_int_equal(fd, -1);
    assert_int_equal(snap_mem_open(t->dir, RAM_SIZE, &fd, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "not a regular file"));

    assert_int_equal(snap_mem_save(path, ram, RAM_SIZE - 1, NULL, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "memory size 16777215 is not a positive multiple of 4096"));
    ram_unmap(ram);
}

/* Base RAM, then the new RAM after a guest ran on: the dirty pages, one of which (page 100)
 * the guest zeroed, and one (page 1) it wrote with the same bytes. */
struct diff_case {
    uint8_t *base, *now;
    uint64_t dirty[RAM_PAGES / 64];
};

static void diff_case_init(struct diff_case *c)
{
    c->base = ram_map();
    c->now = ram_map();
    memset(c->dirty, 0, sizeof(c->dirty));
    fill_sample(c->base);
    memcpy(c->now, c->base, RAM_SIZE);
    static const uint32_t dirty_pages[] = {1, 2, 3, 100, 1500, 1501, 4095};
    for (size_t i = 0; i < sizeof(dirty_pages) / sizeof(dirty_pages[0]); i++)
        c->dirty[dirty_pages[i] / 64] |= 1ull << (dirty_pages[i] % 64);
    memset(c->now + 2 * PAGE, 0x22, 10);   /* changed */
    memset(c->now + 3 * PAGE, 0x33, PAGE); /* was zero */
    memset(c->now + 100 * PAGE, 0, PAGE);  /* became zero */
    memset(c->now + 1500 * PAGE, 0x44, 2 * PAGE);
    memset(c->now + RAM_SIZE - PAGE, 0x55, 8);
}

static void diff_case_free(struct diff_case *c)
{
    ram_unmap(c->base);
    ram_unmap(c->now);
}

struct diff_paths {
    char base[4200], diff[4200], dirty[4200], full[4200];
};

static void diff_paths(const struct snapshot_tmp *t, struct diff_paths *p)
{
    snapshot_tmp_file(t, "memory.kiln", p->base, sizeof(p->base));
    snapshot_tmp_file(t, "memory.diff", p->diff, sizeof(p->diff));
    snapshot_tmp_file(t, "memory.dirty", p->dirty, sizeof(p->dirty));
    snapshot_tmp_file(t, "full.kiln", p->full, sizeof(p->full));
}

static void test_diff_merge_equals_full_save(void **state)
{
    struct diff_case c;
    struct diff_paths p;
    diff_case_init(&c);
    diff_paths(*state, &p);
    struct error err = {{0}};
    struct snap_mem_stats st;
    assert_int_equal(snap_mem_save(p.base, c.base, RAM_SIZE, NULL, &err), 0);
    assert_int_equal(snap_mem_save_dirty(p.diff, p.dirty, c.now, RAM_SIZE, c.dirty, &st, &err), 0);
    assert_int_equal(st.pages, 7);
    assert_int_equal(st.data_pages, 6); /* page 100 is now zero: a hole in the diff */
    struct stat sb;
    assert_int_equal(stat(p.diff, &sb), 0);
    assert_int_equal(sb.st_size, RAM_SIZE);
    assert_true((uint64_t)sb.st_blocks * 512 <= 64 * PAGE);

    assert_int_equal(snap_mem_merge(p.base, p.diff, p.dirty, &err), 0);
    assert_int_equal(snap_mem_save(p.full, c.now, RAM_SIZE, NULL, &err), 0);
    uint8_t *merged = read_file(p.base, RAM_SIZE), *full = read_file(p.full, RAM_SIZE);
    assert_memory_equal(merged, full, RAM_SIZE);
    assert_memory_equal(merged, c.now, RAM_SIZE);
    for (uint32_t i = 0; i < PAGE; i++)
        assert_int_equal(merged[100 * PAGE + i], 0); /* the page that became zero */
    /* ... and it is a hole again, like in a full save. */
    int fd = open(p.base, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(lseek(fd, 100 * PAGE, SEEK_DATA), 1500 * PAGE);
    close(fd);

    /* Merging again (as after a crash during the first) changes nothing. */
    assert_int_equal(snap_mem_merge(p.base, p.diff, p.dirty, &err), 0);
    free(merged);
    merged = read_file(p.base, RAM_SIZE);
    assert_memory_equal(merged, full, RAM_SIZE);
    free(merged);
    free(full);
    diff_case_free(&c);
}

static void test_diff_applied_over_base(void **state)
{
    struct diff_case c;
    struct diff_paths p;
    diff_case_init(&c);
    diff_paths(*state, &p);
    struct error err = {{0}};
    assert_int_equal(snap_mem_save(p.base, c.base, RAM_SIZE, NULL, &err), 0);
    assert_int_equal(snap_mem_save_dirty(p.diff, p.dirty, c.now, RAM_SIZE, c.dirty, NULL, &err), 0);
    uint8_t *ram = ram_map();
    int fd = -1;
    assert_int_equal(snap_mem_open(p.base, RAM_SIZE, &fd, &err), 0);
    assert_int_equal(snap_mem_copy_in(fd, ram, RAM_SIZE, &err), 0);
    close(fd);
    assert_memory_equal(ram, c.base, RAM_SIZE);
    assert_int_equal(snap_mem_apply_dirty(p.diff, p.dirty, ram, RAM_SIZE, &err), 0);
    assert_memory_equal(ram, c.now, RAM_SIZE);
    ram_unmap(ram);
    diff_case_free(&c);
}

static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= 0x10;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

static void test_diff_refusals(void **state)
{
    struct diff_case c;
    struct diff_paths p;
    diff_case_init(&c);
    diff_paths(*state, &p);
    struct error err = {{0}};
    assert_int_equal(snap_mem_save(p.base, c.base, RAM_SIZE / 2, NULL, &err), 0);
    assert_int_equal(snap_mem_save_dirty(p.diff, p.dirty, c.now, RAM_SIZE, c.dirty, NULL, &err), 0);
    /* A base of another size is refused before it is touched. */
    uint8_t *before = read_file(p.base, RAM_SIZE / 2);
    assert_int_equal(snap_mem_merge(p.base, p.diff, p.dirty, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "base memory file"));
    assert_non_null(strstr(err.msg, "8388608 bytes (expected 16777216"));
    uint8_t *after = read_file(p.base, RAM_SIZE / 2);
    assert_memory_equal(before, after, RAM_SIZE / 2);
    free(before);
    free(after);

    uint8_t *ram = ram_map();
    assert_int_equal(snap_mem_apply_dirty(p.diff, p.dirty, ram, RAM_SIZE / 2, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "for 16777216 bytes of memory (expected 8388608)"));

    /* The bitmap file: header 32 bytes, 64 words, trailer 8. */
    struct stat sb;
    assert_int_equal(stat(p.dirty, &sb), 0);
    assert_int_equal(sb.st_size, 32 + RAM_PAGES / 8 + 8);
    flip_byte(p.dirty, 40);
    assert_int_equal(snap_mem_apply_dirty(p.diff, p.dirty, ram, RAM_SIZE, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "CRC mismatch, the file is damaged"));
    flip_byte(p.dirty, 40);
    flip_byte(p.dirty, 0);
    assert_int_equal(snap_mem_merge(p.base, p.diff, p.dirty, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "not a kiln dirty bitmap"));
    flip_byte(p.dirty, 0);
    assert_int_equal(truncate(p.dirty, sb.st_size - 1), 0);
    assert_int_equal(snap_mem_apply_dirty(p.diff, p.dirty, ram, RAM_SIZE, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "551 bytes (expected 552 for 4096 pages)"));
    assert_int_equal(truncate(p.dirty, 10), 0);
    assert_int_equal(snap_mem_apply_dirty(p.diff, p.dirty, ram, RAM_SIZE, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "truncated (10 bytes, at least 40)"));
    /* Nothing was applied by the refused calls. */
    for (uint64_t i = 0; i < RAM_SIZE; i += PAGE)
        assert_int_equal(ram[i], 0);
    ram_unmap(ram);
    diff_case_free(&c);
}

/* A bitmap for RAM whose page count is not a multiple of 64: bits past the end are refused. */
static void test_bitmap_bits_past_the_end(void **state)
{
    struct snapshot_tmp *t = *state;
    char diff[4200], dirty_path[4200];
    snapshot_tmp_file(t, "memory.diff", diff, sizeof(diff));
    snapshot_tmp_file(t, "memory.dirty", dirty_path, sizeof(dirty_path));
    uint8_t *ram = ram_map();
    uint64_t dirty[1] = {~0ull}; /* 64 bits for 10 pages: only the 10 are written */
    struct error err = {{0}};
    struct snap_mem_stats st;
    assert_int_equal(snap_mem_save_dirty(diff, dirty_path, ram, 10 * PAGE, dirty, &st, &err), 0);
    assert_int_equal(st.pages, 10);
    assert_int_equal(snap_mem_apply_dirty(diff, dirty_path, ram, 10 * PAGE, &err), 0);
    /* Set bit 10 by hand and fix the CRC as a buggy writer would have. */
    uint8_t file[32 + 8 + 8];
    int fd = open(dirty_path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, file, sizeof(file), 0), (ssize_t)sizeof(file));
    file[32 + 1] |= 0x04;
    file[24] = 11; /* the header's count of set bits */
    uint32_t crc = 0;
    {
        /* CRC-32 computed bitwise here, independent of the code under test. */
        crc = ~0u;
        for (size_t i = 0; i < sizeof(file) - 4; i++) {
            crc ^= file[i];
            for (int k = 0; k < 8; k++)
                crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
        }
        crc = ~crc;
    }
    memcpy(file + sizeof(file) - 4, &crc, 4);
    assert_int_equal(pwrite(fd, file, sizeof(file), 0), (ssize_t)sizeof(file));
    close(fd);
    assert_int_equal(snap_mem_apply_dirty(diff, dirty_path, ram, 10 * PAGE, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "bits set past the last of 10 pages"));
    ram_unmap(ram);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_save_is_sparse_and_reads_back, snapshot_tmp_setup,
                                        snapshot_tmp_teardown),
        cmocka_unit_test_setup_teardown(test_write_then_commit, snapshot_tmp_setup,
                                        snapshot_tmp_teardown),
        cmocka_unit_test_setup_teardown(test_all_zero_and_all_data, snapshot_tmp_setup,
                                        snapshot_tmp_teardown),
        cmocka_unit_test_setup_teardown(test_open_refusals, snapshot_tmp_setup,
                                        snapshot_tmp_teardown),
        cmocka_unit_test_setup_teardown(test_diff_merge_equals_full_save, snapshot_tmp_setup,
                                        snapshot_tmp_teardown),
        cmocka_unit_test_setup_teardown(test_diff_applied_over_base, snapshot_tmp_setup,
                                        snapshot_tmp_teardown),
        cmocka_unit_test_setup_teardown(test_diff_refusals, snapshot_tmp_setup,
                                        snapshot_tmp_teardown),
        cmocka_unit_test_setup_teardown(test_bitmap_bits_past_the_end, snapshot_tmp_setup,
                                        snapshot_tmp_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
