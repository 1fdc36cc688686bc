/* Unit tests for the disk identities (snap_disk.h) and snapshot folders (snap_dir.h): a disk
 * that grew, was modified or went away is refused by name; a folder holding a snapshot is
 * never reused. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "kiln/snapshot/snap_dir.h"
#include "kiln/snapshot/snap_disk.h"
#include "snapshot_tmp.h"

static void make_file(const char *path, off_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, size), 0);
    close(fd);
}

static void set_mtime(const char *path, time_t sec, long nsec)
{
    struct timespec times[2] = {{.tv_sec = sec, .tv_nsec = nsec}, {.tv_sec = sec, .tv_nsec = nsec}};
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
}

static void test_unchanged_disk_passes(void **state)
{
    struct snapshot_tmp *t = *state;
    char path[4200];
    snapshot_tmp_file(t, "data.raw", path, sizeof(path));
    make_file(path, 8 << 20);
    set_mtime(path, 1700000000, 123456789);
    struct snap_disk_id id;
    struct error err = {{0}};
    assert_int_equal(snap_disk_id_of(path, true, &id, &err), 0);
    assert_int_equal(id.size, 8 << 20);
    assert_int_equal(id.mtime_sec, 1700000000);
    assert_int_equal(id.mtime_nsec, 123456789);
    assert_int_equal(id.readonly, 1);
    assert_string_equal(id.path, path);
    assert_int_equal(snap_disk_id_check(&id, 1, &err), 0);
}

static void test_changed_disks_refused(void **state)
{
    struct snapshot_tmp *t = *state;
    char path[4200], want[4400];
    snapshot_tmp_file(t, "data.raw", path, sizeof(path));
    make_file(path, 8388608);
    set_mtime(path, 1700000000, 5);
    struct snap_disk_id id;
    struct error err = {{0}};
    assert_int_equal(snap_disk_id_of(path, false, &id, &err), 0);

    make_file(path, 9437184);
    set_mtime(path, 1700000000, 5); /* even with its time put back */
    assert_int_equal(snap_disk_id_check(&id, 1, &err), -ESTALE);
    snprintf(want, sizeof(want),
             "disk 1 (%s): changed since the snapshot (size 8388608 -> 9437184)", path);
    assert_string_equal(err.msg, want);

    make_file(path, 8388608);
    set_mtime(path, 1700000001, 5);
    assert_int_equal(snap_disk_id_check(&id, 1, &err), -ESTALE);
    snprintf(want, sizeof(want),
             "disk 1 (%s): changed since the snapshot (modified at 1700000000.000000005 -> "
             "1700000001.000000005)",
             path);
    assert_string_equal(err.msg, want);

    unlink(path);
    assert_int_equal(snap_disk_id_check(&id, 0, &err), -ESTALE);
    snprintf(want, sizeof(want),
             "disk 0 (%s): missing since the snapshot: No such file or directory", path);
    assert_string_equal(err.msg, want);
}

static void test_disk_id_refusals(void **state)
{
    struct snapshot_tmp *t = *state;
    struct snap_disk_id id;
    struct error err = {{0}};
    char missing[4300];
    snprintf(missing, sizeof(missing), "%s/none.raw", t->dir);
    assert_int_equal(snap_disk_id_of(missing, false, &id, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "none.raw): No such file or directory"));
    assert_int_equal(snap_disk_id_of("", false, &id, &err), -EINVAL);
    assert_string_equal(err.msg, "disk: empty path");
    assert_int_equal(snap_disk_id_of(t->dir, false, &id, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "not a regular file or block device"));
    char *long_path = malloc(5000);
    assert_non_null(long_path);
    memset(long_path, 'a', 4999);
    long_path[4999] = 0;
    assert_int_equal(snap_disk_id_of(long_path, false, &id, &err), -ENAMETOOLONG);
    assert_non_null(strstr(err.msg, "path is 4999 characters (a snapshot keeps at most 4095)"));
    free(long_path);

    /* A saved identity from a damaged or hostile snapshot. */
    char path[4200];
    snapshot_tmp_file(t, "d.raw", path, sizeof(path));
    make_file(path, 4096);
    assert_int_equal(snap_disk_id_of(path, false, &id, &err), 0);
    id.readonly = 2;
    assert_int_equal(snap_disk_id_check(&id, 3, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "disk 3 ("));
    assert_non_null(strstr(err.msg, "malformed identity in the snapshot"));
    id.readonly = 0;
    id.mtime_nsec = 1000000000;
    assert_int_equal(snap_disk_id_check(&id, 3, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "mtime nanoseconds 1000000000"));
    id.mtime_nsec = 0;
    id.path[sizeof(id.path) - 1] = 'x';
    assert_int_equal(snap_disk_id_check(&id, 3, &err), -EINVAL);
    assert_string_equal(err.msg, "disk 3: nonzero bytes after the snapshot's path");
    id.path[sizeof(id.path) - 1] = 0;
    id.path[1] = '\n';
    assert_int_equal(snap_disk_id_check(&id, 3, &err), -EINVAL);
    assert_string_equal(err.msg,
                        "disk 3: the snapshot's path has byte 0x0a at offset 1 (expected text)");
    memset(id.path, 'p', sizeof(id.path));
    assert_int_equal(snap_disk_id_check(&id, 3, &err), -EINVAL);
    assert_string_equal(err.msg, "disk 3: the snapshot's path has no NUL in its 4096 bytes");
    memset(id.path, 0, sizeof(id.path));
    assert_int_equal(snap_disk_id_check(&id, 3, &err), -EINVAL);
    assert_string_equal(err.msg, "disk 3: the snapshot's path is empty");
    assert_int_equal(snap_disk_id_of("/tmp/a\nb.raw", false, &id, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "control character"));
}

static void test_dir_prepare(void **state)
{
    struct snapshot_tmp *t = *state;
    char dir[4200], file[4300], want[4600];
    struct error err = {{0}};
    snapshot_tmp_file(t, "snap1", dir, sizeof(dir));
    assert_int_equal(snap_dir_prepare(dir, &err), 0);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    /* An existing folder without a snapshot in it is fine (e.g. one made beforehand). */
    assert_int_equal(snap_dir_prepare(dir, &err), 0);
    assert_int_equal(snap_dir_file(dir, SNAP_MEMORY_FILE, file, sizeof(file), &err), 0);
    make_file(file, 0);
    assert_int_equal(snap_dir_prepare(dir, &err), 0);

    assert_int_equal(snap_dir_file(dir, SNAP_STATE_FILE, file, sizeof(file), &err), 0);
    make_file(file, 0);
    assert_int_equal(snap_dir_prepare(dir, &err), -EEXIST);
    snprintf(want, sizeof(want),
             "snapshot folder %s already holds a snapshot (state.kiln); remove it or choose "
             "another folder",
             dir);
    assert_string_equal(err.msg, want);

    assert_int_equal(snap_dir_prepare(file, &err), -ENOTDIR);
    assert_non_null(strstr(err.msg, "exists and is not a folder"));
    snprintf(want, sizeof(want), "%s/missing/deeper", t->dir);
    assert_int_equal(snap_dir_prepare(want, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "creating it: No such file or directory"));

    char small[16];
    assert_int_equal(snap_dir_file("/a/long/folder", "state.kiln", small, sizeof(small), &err),
                     -ENAMETOOLONG);
    assert_string_equal(err.msg, "snapshot folder /a/long/folder: path too long (at most 15)");
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_base_file(void **state)
{
    struct snapshot_tmp *t = *state;
    char base[4200], diff[4200], file[4300], got[4096], want[4600];
    struct error err = {{0}};
    snapshot_tmp_file(t, "base", base, sizeof(base));
    snapshot_tmp_file(t, "diff", diff, sizeof(diff));
    assert_int_equal(snap_dir_prepare(base, &err), 0);
    assert_int_equal(snap_dir_prepare(diff, &err), 0);

    assert_int_equal(snap_dir_write_base(diff, base, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "no state.kiln there (expected a snapshot)"));
    snap_dir_file(base, SNAP_STATE_FILE, file, sizeof(file), &err);
    write_text(file, "");
    /* Given relative, stored absolute: the diff may be restored from another directory. */
    assert_int_equal(chdir(t->dir), 0);
    assert_int_equal(snap_dir_write_base(diff, "./base/", &err), 0);
    assert_int_equal(snap_dir_read_base(diff, got, sizeof(got), &err), 0);
    char real[4200];
    assert_non_null(realpath(base, real));
    assert_string_equal(got, real);
    snap_dir_file(diff, SNAP_BASE_FILE, file, sizeof(file), &err);
    snprintf(want, sizeof(want), "%s\n", real);
    FILE *f = fopen(file, "r");
    assert_non_null(f);
    char line[4300] = "";
    assert_non_null(fgets(line, sizeof(line), f));
    fclose(f);
    assert_string_equal(line, want);

    char small[8];
    assert_int_equal(snap_dir_read_base(diff, small, sizeof(small), &err), -ENAMETOOLONG);
    assert_non_null(strstr(err.msg, "(at most 7)"));
    write_text(file, "relative/path\n");
    assert_int_equal(snap_dir_read_base(diff, got, sizeof(got), &err), -EINVAL);
    assert_non_null(strstr(err.msg, "expected an absolute path to the base folder"));
    write_text(file, "/a\n/b\n");
    assert_int_equal(snap_dir_read_base(diff, got, sizeof(got), &err), -EINVAL);
    assert_non_null(strstr(err.msg, "byte 0x0a at offset 2 (expected one line holding a path)"));
    write_text(file, "/no/newline");
    assert_int_equal(snap_dir_read_base(diff, got, sizeof(got), &err), -EINVAL);
    assert_non_null(strstr(err.msg, "expected one line ending in a newline"));
    write_text(file, "");
    assert_int_equal(snap_dir_read_base(diff, got, sizeof(got), &err), -EINVAL);
    char *huge = malloc(6000);
    assert_non_null(huge);
    memset(huge, 'a', 5999);
    huge[0] = '/';
    huge[5999] = 0;
    write_text(file, huge);
    free(huge);
    assert_int_equal(snap_dir_read_base(diff, got, sizeof(got), &err), -EINVAL);
    assert_non_null(strstr(err.msg, "longer than a path (at most 4096 bytes)"));
    unlink(file);
    assert_int_equal(snap_dir_read_base(diff, got, sizeof(got), &err), -ENOENT);
    assert_int_equal(chdir("/"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unchanged_disk_passes, snapshot_tmp_setup,
                                        snapshot_tmp_teardown),
        cmocka_unit_test_setup_teardown(test_changed_disks_refused, snapshot_tmp_setup,
                                        snapshot_tmp_teardown),
        cmocka_unit_test_setup_teardown(test_disk_id_refusals, snapshot_tmp_setup,
                                        snapshot_tmp_teardown),
        cmocka_unit_test_setup_teardown(test_dir_prepare, snapshot_tmp_setup,
                                        snapshot_tmp_teardown),
        cmocka_unit_test_setup_teardown(test_base_file, snapshot_tmp_setup, snapshot_tmp_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
