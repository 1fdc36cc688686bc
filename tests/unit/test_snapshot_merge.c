/* Unit tests for kiln snapshot merge's core (snap_merge): a diff folded into a full base and
 * into a base that is itself a diff (pages, bitmap, state flags, config), read back as a
 * restore would; a full snapshot refused with nothing changed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/snapshot/snap_dir.h"
#include "kiln/snapshot/snap_mem.h"
#include "kiln/snapshot/snap_merge.h"
#include "kiln/snapshot/snap_state.h"
#include "snapshot_tmp.h"

#define PAGES    64
#define RAM_SIZE (PAGES * 4096)

static char *path_into(char *out, const char *dir, const char *file)
{
    snprintf(out, 512, "%s/%s", dir, file);
    return out;
}
/* DIR/FILE in a buffer of the calling block's own (a compound literal lives as long as it). */
#define path_in(dir, file) path_into((char[512]){0}, (dir), (file))

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void read_text(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, size - 1, f);
    out[n] = 0;
    fclose(f);
}

/* A snapshot folder: state.kiln with one section holding `marker`, config.yaml, and RAM:
 * memory.kiln of ram (full), or memory.diff + memory.dirty of the pages in dirty (a diff). */
static void make_snapshot(const char *dir, const char *base, const uint8_t *ram,
                          const uint64_t *dirty, uint32_t marker)
{
    struct error err = {{0}};
    assert_int_equal(mkdir(dir, 0700), 0);
    if (base) {
        assert_int_equal(snap_mem_save_dirty(path_in(dir, SNAP_DIFF_FILE),
                                             path_in(dir, SNAP_DIRTY_FILE), ram, RAM_SIZE, dirty,
                                             NULL, &err),
                         0);
        assert_int_equal(snap_dir_write_base(dir, base, &err), 0);
    } else {
        assert_int_equal(snap_mem_save(path_in(dir, SNAP_MEMORY_FILE), ram, RAM_SIZE, NULL, &err),
                         0);
    }
    char config[64];
    snprintf(config, sizeof(config), "marker: %u\n", marker);
    write_text(path_in(dir, SNAP_CONFIG_FILE), config);
    struct snap_info info = {.memory_size = RAM_SIZE, .flags = base ? SNAP_FLAG_DIFF : 0};
    struct snap_writer w;
    assert_int_equal(snap_writer_open(&w, path_in(dir, SNAP_STATE_FILE), &info, &err), 0);
    assert_int_equal(snap_writer_add(&w, "marker", -1, &marker, sizeof(marker), &err), 0);
    assert_int_equal(snap_writer_finish(&w, &err), 0);
}

/* The folder's state: its flags and marker; its config's marker line. */
static void expect_state(const char *dir, uint32_t flags, uint32_t marker)
{
    struct error err = {{0}};
    struct snap_reader r;
    assert_int_equal(snap_reader_load(&r, path_in(dir, SNAP_STATE_FILE), &err), 0);
    assert_int_equal(r.info.flags, flags);
    const uint32_t *saved = snap_reader_find(&r, "marker", -1, sizeof(uint32_t), &err);
    assert_non_null(saved);
    assert_int_equal(*saved, marker);
    snap_reader_free(&r);
    char config[64], want[64];
    read_text(path_in(dir, SNAP_CONFIG_FILE), config, sizeof(config));
    snprintf(want, sizeof(want), "marker: %u\n", marker);
    assert_string_equal(config, want);
}

static void fill_page(uint8_t *ram, unsigned page, uint8_t value)
{
    memset(ram + page * 4096, value, 4096);
}

struct folders {
    char s0[256], s1[256], s2[256];
};

static void folders_in(const struct snapshot_tmp *t, struct folders *f)
{
    snapshot_tmp_file(t, "s0", f->s0, sizeof(f->s0));
    snapshot_tmp_file(t, "s1", f->s1, sizeof(f->s1));
    snapshot_tmp_file(t, "s2", f->s2, sizeof(f->s2));
}

/* s0 full; s1 changes pages 1 (to 0x11) and 2 (to zero); merged, s0 is s1's point. */
static void test_merge_into_full_base(void **state)
{
    struct snapshot_tmp *t = *state;
    struct folders f;
    folders_in(t, &f);
    struct error err = {{0}};
    static uint8_t ram[RAM_SIZE], expect[RAM_SIZE];
    memset(ram, 0, sizeof(ram));
    fill_page(ram, 1, 0xaa);
    fill_page(ram, 2, 0xbb);
    fill_page(ram, 3, 0xcc);
    make_snapshot(f.s0, NULL, ram, NULL, 100);
    fill_page(ram, 1, 0x11);
    fill_page(ram, 2, 0);
    uint64_t dirty[1] = {(1u << 1) | (1u << 2)};
    make_snapshot(f.s1, f.s0, ram, dirty, 101);
    char base[256];
    assert_int_equal(snap_merge(f.s1, base, sizeof(base), &err), 0);
    assert_string_equal(base, f.s0);
    expect_state(f.s0, 0, 101);
    int fd;
    assert_int_equal(snap_mem_open(path_in(f.s0, SNAP_MEMORY_FILE), RAM_SIZE, &fd, &err), 0);
    memset(expect, 0, sizeof(expect));
    assert_int_equal(snap_mem_copy_in(fd, expect, RAM_SIZE, &err), 0);
    close(fd);
    assert_memory_equal(expect, ram, RAM_SIZE);
    /* s1 is left: laid over the merged s0 it still gives s1's RAM. */
    assert_int_equal(snap_mem_apply_dirty(path_in(f.s1, SNAP_DIFF_FILE),
                                          path_in(f.s1, SNAP_DIRTY_FILE), expect, RAM_SIZE, &err),
                     0);
    assert_memory_equal(expect, ram, RAM_SIZE);
    /* s0 is full now: merging it is refused, and nothing changes. */
    assert_int_equal(snap_merge(f.s0, NULL, 0, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "not a diff"));
    expect_state(f.s0, 0, 101);
}

/* s1 (a diff of s0) gets s2's pages and bits; it stays a diff of s0. */
static void test_merge_into_diff_base(void **state)
{
    struct snapshot_tmp *t = *state;
    struct folders f;
    folders_in(t, &f);
    struct error err = {{0}};
    static uint8_t ram[RAM_SIZE], check[RAM_SIZE];
    memset(ram, 0, sizeof(ram));
    fill_page(ram, 5, 0x55);
    make_snapshot(f.s0, NULL, ram, NULL, 200);
    fill_page(ram, 6, 0x66);
    uint64_t dirty1[1] = {1u << 6};
    make_snapshot(f.s1, f.s0, ram, dirty1, 201);
    fill_page(ram, 5, 0);
    fill_page(ram, 40, 0x40);
    uint64_t dirty2[1] = {(1u << 5) | (1ull << 40)};
    make_snapshot(f.s2, f.s1, ram, dirty2, 202);
    assert_int_equal(snap_merge(f.s2, NULL, 0, &err), 0);
    expect_state(f.s1, SNAP_FLAG_DIFF, 202);
    char base[256];
    assert_int_equal(snap_dir_read_base(f.s1, base, sizeof(base), &err), 0);
    assert_string_equal(base, f.s0);
    /* s0's RAM with the merged s1 over it is s2's point. */
    int fd;
    assert_int_equal(snap_mem_open(path_in(f.s0, SNAP_MEMORY_FILE), RAM_SIZE, &fd, &err), 0);
    memset(check, 0, sizeof(check));
    assert_int_equal(snap_mem_copy_in(fd, check, RAM_SIZE, &err), 0);
    close(fd);
    assert_int_equal(snap_mem_apply_dirty(path_in(f.s1, SNAP_DIFF_FILE),
                                          path_in(f.s1, SNAP_DIRTY_FILE), check, RAM_SIZE, &err),
                     0);
    assert_memory_equal(check, ram, RAM_SIZE);
}

static void test_merge_refusals(void **state)
{
    struct snapshot_tmp *t = *state;
    struct folders f;
    folders_in(t, &f);
    struct error err = {{0}};
    static uint8_t ram[RAM_SIZE];
    memset(ram, 0, sizeof(ram));
    uint64_t dirty[1] = {1};
    make_snapshot(f.s0, NULL, ram, NULL, 300);
    make_snapshot(f.s1, f.s0, ram, dirty, 301);
    /* The base gone: one line naming it. */
    char away[300];
    snprintf(away, sizeof(away), "%s-away", f.s0);
    assert_int_equal(rename(f.s0, away), 0);
    assert_true(snap_merge(f.s1, NULL, 0, &err) < 0);
    assert_non_null(strstr(err.msg, f.s0));
    assert_null(strchr(err.msg, '\n'));
    /* A diff that names itself as its base. */
    char self[300];
    snprintf(self, sizeof(self), "%s-self", f.s1);
    make_snapshot(self, f.s1, ram, dirty, 302);
    char line[310];
    snprintf(line, sizeof(line), "%s\n", self);
    write_text(path_in(self, SNAP_BASE_FILE), line);
    assert_int_equal(snap_merge(self, NULL, 0, &err), -ELOOP);
    assert_non_null(strstr(err.msg, "itself"));
    /* No such folder at all. */
    assert_true(snap_merge(f.s2, NULL, 0, &err) < 0);
    assert_non_null(strstr(err.msg, f.s2));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, snapshot_tmp_setup, snapshot_tmp_teardown)
    const struct CMUnitTest tests[] = {
        T(test_merge_into_full_base),
        T(test_merge_into_diff_base),
        T(test_merge_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
