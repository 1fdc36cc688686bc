/* A scratch folder per snapshot unit test: made in setup, removed with all it holds in
 * teardown (cmocka group fixtures share it between test_snapshot_*.c). */
#ifndef KILN_TEST_SNAPSHOT_TMP_H
#define KILN_TEST_SNAPSHOT_TMP_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct snapshot_tmp {
    char dir[64];
};

static int snapshot_tmp_remove_one(const char *path, const struct stat *st, int type,
                                   struct FTW *ftw)
{
    return remove(path);
}

static int snapshot_tmp_setup(void **state)
{
    struct snapshot_tmp *t = calloc(1, sizeof(*t));
    if (!t)
        return -1;
    snprintf(t->dir, sizeof(t->dir), "/tmp/kiln-snapshot-test-XXXXXX");
    if (!mkdtemp(t->dir)) {
        free(t);
        return -1;
    }
    *state = t;
    return 0;
}

static int snapshot_tmp_teardown(void **state)
{
    struct snapshot_tmp *t = *state;
    nftw(t->dir, snapshot_tmp_remove_one, 8, FTW_DEPTH | FTW_PHYS);
    free(t);
    return 0;
}

/* out = the scratch folder's file name. */
static void snapshot_tmp_file(const struct snapshot_tmp *t, const char *name, char *out,
                              size_t size)
{
    snprintf(out, size, "%s/%s", t->dir, name);
}

#endif
