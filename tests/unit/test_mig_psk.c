/* Unit tests for the migration's pre-shared key: a good key file (with or without its newline),
 * one group or others can read refused with `chmod 600`, and short, long and non-hex keys. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/migrate/mig_link.h"

#define GOOD_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F"

struct key_dir {
    char dir[64];
    char path[128];
};

static int make_dir(void **state)
{
    struct key_dir *k = calloc(1, sizeof(*k));
    strcpy(k->dir, "/tmp/kiln-mig-psk-XXXXXX");
    assert_non_null(mkdtemp(k->dir));
    snprintf(k->path, sizeof(k->path), "%s/key", k->dir);
    *state = k;
    return 0;
}

static int remove_dir(void **state)
{
    struct key_dir *k = *state;
    unlink(k->path);
    rmdir(k->dir);
    free(k);
    return 0;
}

static void write_key(const struct key_dir *k, const char *text, mode_t mode)
{
    unlink(k->path);
    int fd = open(k->path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(chmod(k->path, mode), 0);
}

static void test_good_file(void **state)
{
    struct key_dir *k = *state;
    uint8_t key[MIG_PSK_SIZE];
    struct error err = {0};
    write_key(k, GOOD_HEX "\n", 0600);
    assert_int_equal(mig_psk_load(k->path, key, &err), 0);
    for (int i = 0; i < MIG_PSK_SIZE; i++)
        assert_int_equal(key[i], i);
    write_key(k, GOOD_HEX, 0400);
    memset(key, 0xff, sizeof(key));
    assert_int_equal(mig_psk_load(k->path, key, &err), 0);
    assert_int_equal(key[31], 31);
}

static void test_group_readable_refused(void **state)
{
    struct key_dir *k = *state;
    uint8_t key[MIG_PSK_SIZE];
    struct error err = {0};
    write_key(k, GOOD_HEX "\n", 0640);
    assert_int_equal(mig_psk_load(k->path, key, &err), -EACCES);
    char expected[200];
    snprintf(expected, sizeof(expected), "(run `chmod 600 %s`)", k->path);
    assert_non_null(strstr(err.msg, expected));
    assert_non_null(strstr(err.msg, "mode 640 lets group or others at the key"));
    write_key(k, GOOD_HEX "\n", 0604);
    assert_int_equal(mig_psk_load(k->path, key, &err), -EACCES);
}

static void expect_bad_file(const struct key_dir *k, const char *text, const char *words)
{
    uint8_t key[MIG_PSK_SIZE];
    struct error err = {0};
    write_key(k, text, 0600);
    assert_int_equal(mig_psk_load(k->path, key, &err), -EINVAL);
    if (!strstr(err.msg, words) || !strstr(err.msg, k->path))
        fail_msg("\"%s\" gave \"%s\", expected \"%s\"", text, err.msg, words);
}

static void test_bad_contents(void **state)
{
    struct key_dir *k = *state;
    expect_bad_file(k, "00112233\n", "8 characters, expected 64 hex digits (a 32-byte key)");
    expect_bad_file(k, "", "0 characters, expected 64 hex digits");
    expect_bad_file(k, GOOD_HEX "00\n", "66 characters, expected 64 hex digits");
    expect_bad_file(k, GOOD_HEX GOOD_HEX, "longer than 64 hex digits");
    char bad_digit[] = GOOD_HEX "\n";
    bad_digit[0] = 'g';
    expect_bad_file(k, bad_digit, "character 1 is not a hex digit");
    expect_bad_file(k, GOOD_HEX "\n\n", "65 characters");
}

static void test_missing_file(void **state)
{
    struct key_dir *k = *state;
    uint8_t key[MIG_PSK_SIZE];
    struct error err = {0};
    unlink(k->path);
    assert_int_equal(mig_psk_load(k->path, key, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "No such file"));
    assert_int_equal(mig_psk_load(k->dir, key, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "not a regular file"));
}

static void test_parse_string(void **state)
{
    uint8_t key[MIG_PSK_SIZE];
    struct error err = {0};
    assert_int_equal(mig_psk_parse(GOOD_HEX, key, &err), 0);
    assert_int_equal(key[26], 26);
    assert_int_equal(mig_psk_parse(GOOD_HEX "\n", key, &err), -EINVAL);
    assert_int_equal(mig_psk_parse("abc", key, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "migration key: 3 characters, expected 64 hex digits"));
    char bad[] = GOOD_HEX;
    bad[40] = 'z';
    assert_int_equal(mig_psk_parse(bad, key, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "character 41 is not a hex digit"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_file, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_group_readable_refused, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_bad_contents, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_missing_file, make_dir, remove_dir),
        cmocka_unit_test(test_parse_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
