/* Unit tests for walking a diff snapshot's chain of bases: full alone, diff over diff over
 * full, and each refusal (a missing base, a loop, a base of another memory size, too long a
 * chain, a diff without its base file) in one line naming the link. */
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

#include "kiln/snapshot/snap_chain.h"
#include "kiln/snapshot/snap_dir.h"
#include "kiln/snapshot/snap_state.h"
#include "snapshot_tmp.h"

#define MiB (1ull << 20)

static struct snap_chain chain;

/* A snapshot folder NAME under the scratch folder holding only a state file. */
static void make_link(const struct snapshot_tmp *t, const char *name, uint64_t memory,
                      const char *base)
{
    char dir[256], path[300];
    struct error err = {{0}};
    snapshot_tmp_file(t, name, dir, sizeof(dir));
    assert_int_equal(mkdir(dir, 0700), 0);
    struct snap_info info = {.memory_size = memory, .flags = base ? SNAP_FLAG_DIFF : 0};
    if (base) {
        char base_dir[256];
        snprintf(base_dir, sizeof(base_dir), "%s/%s", t->dir, base);
        /* The base may not exist yet (a loop made on purpose): write the file by hand. */
        snprintf(path, sizeof(path), "%s/%s", dir, SNAP_BASE_FILE);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fprintf(f, "%s\n", base_dir);
        fclose(f);
    }
    snprintf(path, sizeof(path), "%s/%s", dir, SNAP_STATE_FILE);
    struct snap_writer w;
    assert_int_equal(snap_writer_open(&w, path, &info, &err), 0);
    assert_int_equal(snap_writer_finish(&w, &err), 0);
}

static int walk(const struct snapshot_tmp *t, const char *name, struct error *err)
{
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/%s", t->dir, name);
    return snap_chain_walk(dir, &chain, err);
}

static void expect_refused(const struct snapshot_tmp *t, const char *name, const char *want)
{
    struct error err = {{0}};
    assert_true(walk(t, name, &err) < 0);
    if (!strstr(err.msg, want))
        fail_msg("'%s' does not say '%s'", err.msg, want);
    assert_null(strchr(err.msg, '\n'));
}

static void test_full_alone(void **state)
{
    struct snapshot_tmp *t = *state;
    struct error err = {{0}};
    make_link(t, "full", 16 * MiB, NULL);
    assert_int_equal(walk(t, "full", &err), 0);
    assert_int_equal(chain.count, 1);
}

static void test_diff_over_diff_over_full(void **state)
{
    struct snapshot_tmp *t = *state;
    struct error err = {{0}};
    make_link(t, "s0", 16 * MiB, NULL);
    make_link(t, "s1", 16 * MiB, "s0");
    make_link(t, "s2", 16 * MiB, "s1");
    assert_int_equal(walk(t, "s2", &err), 0);
    assert_int_equal(chain.count, 3);
    assert_non_null(strstr(chain.dirs[0], "/s2"));
    assert_non_null(strstr(chain.dirs[1], "/s1"));
    assert_non_null(strstr(chain.dirs[2], "/s0"));
}

static void test_refusals(void **state)
{
    struct snapshot_tmp *t = *state;
    make_link(t, "full", 16 * MiB, NULL);
    make_link(t, "orphan", 16 * MiB, "gone");
    expect_refused(t, "orphan", "gone");
    make_link(t, "loop-a", 16 * MiB, "loop-b");
    make_link(t, "loop-b", 16 * MiB, "loop-a");
    expect_refused(t, "loop-a", "loops back");
    make_link(t, "self", 16 * MiB, "self");
    expect_refused(t, "self", "loops back");
    make_link(t, "bigger", 32 * MiB, "full");
    expect_refused(t, "bigger", "16 MiB of RAM, but");
    make_link(t, "no-base-file", 16 * MiB, "full");
    char path[300];
    snprintf(path, sizeof(path), "%s/no-base-file/%s", t->dir, SNAP_BASE_FILE);
    assert_int_equal(unlink(path), 0);
    expect_refused(t, "no-base-file", SNAP_BASE_FILE);
    expect_refused(t, "not-there", "not-there");
}

static void test_chain_too_long(void **state)
{
    struct snapshot_tmp *t = *state;
    struct error err = {{0}};
    char name[16], base[16];
    make_link(t, "d0", 16 * MiB, NULL);
    for (int i = 1; i < SNAP_CHAIN_MAX; i++) {
        snprintf(name, sizeof(name), "d%d", i);
        snprintf(base, sizeof(base), "d%d", i - 1);
        make_link(t, name, 16 * MiB, base);
    }
    snprintf(name, sizeof(name), "d%d", SNAP_CHAIN_MAX - 1);
    assert_int_equal(walk(t, name, &err), 0); /* exactly the most links */
    assert_int_equal(chain.count, SNAP_CHAIN_MAX);
    snprintf(name, sizeof(name), "d%d", SNAP_CHAIN_MAX);
    snprintf(base, sizeof(base), "d%d", SNAP_CHAIN_MAX - 1);
    make_link(t, name, 16 * MiB, base);
    expect_refused(t, name, "more than 63 diffs");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, snapshot_tmp_setup, snapshot_tmp_teardown)
    const struct CMUnitTest tests[] = {
        T(test_full_alone),
        T(test_diff_over_diff_over_full),
        T(test_refusals),
        T(test_chain_too_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
