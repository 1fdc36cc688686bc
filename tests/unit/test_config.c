/* Unit tests for config_parse_size() and config_validate(): the SIZE syntax with its edge
 * cases, and each validation message, including the checks on input files. */
#include <errno.h>
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

#include "kiln/config.h"

static void test_sizes(void **state)
{
    uint64_t v;
    assert_int_equal(config_parse_size("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(config_parse_size("4096", &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(config_parse_size("1K", &v), 0);
    assert_int_equal(v, 1024);
    assert_int_equal(config_parse_size("512M", &v), 0);
    assert_int_equal(v, 512ULL << 20);
    assert_int_equal(config_parse_size("2g", &v), 0);
    assert_int_equal(v, 2ULL << 30);
    assert_int_equal(config_parse_size("512MiB", &v), 0);
    assert_int_equal(v, 512ULL << 20);
    assert_int_equal(config_parse_size("1GB", &v), 0);
    assert_int_equal(v, 1ULL << 30);
    assert_int_equal(config_parse_size("17179869183G", &v), 0); /* largest that fits */

    const char *bad[] = {"", "M", "-1", "1.5G", " 1M", "1M ", "1T", "1 M", "1Mi", "0x10", "1KK"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(config_parse_size(bad[i], &v), -EINVAL);
    assert_int_equal(config_parse_size(NULL, &v), -EINVAL);
    assert_int_equal(config_parse_size("99999999999G", &v), -ERANGE);
    assert_int_equal(config_parse_size("18446744073709551616", &v), -ERANGE);
    assert_int_equal(config_parse_size("17179869184G", &v), -ERANGE);
}

struct files {
    char dir[64];
    char kernel[96];
    char unreadable[96];
};

static int make_files(void **state)
{
    struct files *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/kiln-test-config-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->kernel, sizeof(f->kernel), "%s/kernel", f->dir);
    FILE *k = fopen(f->kernel, "w");
    fputs("not really a kernel", k);
    fclose(k);
    *state = f;
    return 0;
}

static int remove_files(void **state)
{
    struct files *f = *state;
    unlink(f->kernel);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void valid_config(struct vm_config *cfg, const char *kernel)
{
    config_init(cfg);
    cfg->kernel_path = strdup(kernel);
}

static void expect_invalid(struct vm_config *cfg, const char *message)
{
    struct error err;
    assert_true(config_validate(cfg, &err) < 0);
    assert_string_equal(err.msg, message);
    config_free(cfg);
}

static void test_validate(void **state)
{
    struct files *f = *state;
    struct vm_config cfg;
    struct error err;

    valid_config(&cfg, f->kernel);
    assert_int_equal(config_validate(&cfg, &err), 0);
    config_free(&cfg);

    config_init(&cfg);
    expect_invalid(&cfg, "--kernel: missing (expected the path of a kernel image: bzImage, ELF "
                         "vmlinux or PVH ELF)");

    valid_config(&cfg, "/nonexistent/vmlinux");
    expect_invalid(&cfg, "--kernel: '/nonexistent/vmlinux': No such file or directory");

    valid_config(&cfg, f->dir);
    char expected[160];
    snprintf(expected, sizeof(expected), "--kernel: '%s' is not a regular file", f->dir);
    expect_invalid(&cfg, expected);

    valid_config(&cfg, f->kernel);
    cfg.initrd_path = strdup("/nonexistent/initrd");
    expect_invalid(&cfg, "--initrd: '/nonexistent/initrd': No such file or directory");

    valid_config(&cfg, f->kernel);
    cfg.cpus = 0;
    expect_invalid(&cfg, "--cpus: 0 is out of range (expected 1 to 254)");

    valid_config(&cfg, f->kernel);
    cfg.memory_bytes = 1 << 20;
    expect_invalid(&cfg, "--memory: 1048576 bytes is out of range (expected 4M to 1024G)");

    valid_config(&cfg, f->kernel);
    cfg.memory_bytes = (8 << 20) + 1;
    expect_invalid(&cfg, "--memory: 8388609 bytes is not a multiple of 4 KiB (expected e.g. 512M)");

    valid_config(&cfg, f->kernel);
    cfg.console = CONSOLE_FILE;
    expect_invalid(&cfg, "--console: 'file:' needs a path (expected file:PATH)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test_setup_teardown(test_validate, make_files, remove_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
