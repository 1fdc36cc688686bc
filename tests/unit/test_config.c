/* Unit tests for config.c: defaults, the SIZE syntax with its edge cases, message helpers,
 * and each config_validate message, including the checks on input files. */
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

#include "kiln/config/config.h"

static void test_init_and_free(void **state)
{
    struct vm_config cfg;
    config_init(&cfg);
    assert_null(cfg.kernel_path);
    assert_null(cfg.initrd_path);
    assert_non_null(cfg.cmdline);
    assert_string_equal(cfg.cmdline, "");
    assert_int_equal(cfg.cpus, 1);
    assert_int_equal(cfg.memory_bytes, CONFIG_DEFAULT_MEMORY);
    assert_int_equal(cfg.memory_bytes, 256ULL << 20);
    assert_int_equal(cfg.console, CONSOLE_STDIO);
    assert_null(cfg.console_path);
    assert_int_equal(cfg.log_level, LOG_WARN);
    cfg.kernel_path = strdup("k");
    cfg.initrd_path = strdup("i");
    cfg.console_path = strdup("c");
    config_free(&cfg);
    assert_null(cfg.kernel_path);
    assert_null(cfg.cmdline);
    config_free(&cfg); /* a freed config is an empty one */
}

static void expect_size(const char *text, uint64_t bytes)
{
    uint64_t v = 12345;
    if (config_parse_size(text, &v) != 0)
        fail_msg("\"%s\" should parse", text);
    if (v != bytes)
        fail_msg("\"%s\" gave %llu, expected %llu", text, (unsigned long long)v,
                 (unsigned long long)bytes);
}

static void test_sizes(void **state)
{
    expect_size("0", 0);
    expect_size("4096", 4096);
    expect_size("007", 7);
    expect_size("1K", 1024);
    expect_size("1k", 1024);
    expect_size("512M", 512ULL << 20);
    expect_size("512m", 512ULL << 20);
    expect_size("2G", 2ULL << 30);
    expect_size("2g", 2ULL << 30);
    expect_size("512MiB", 512ULL << 20);
    expect_size("512mib", 512ULL << 20);
    expect_size("1GB", 1ULL << 30);
    expect_size("1kb", 1024);
    expect_size("18446744073709551615", UINT64_MAX);
    expect_size("17179869183G", 17179869183ULL << 30); /* the largest G that fits */
}

static void test_bad_sizes(void **state)
{
    const char *bad[] = {"",    "M",   "-1",  "1.5G", " 1M",  "1M ",  "1T",
                         "1 M", "1Mi", "1iB", "1B",   "0x10", "1KK",  "1KiBB",
                         "+1",  "1e6", "K1",  "1MB2", "1\nM", "1M\n", "99999999999999999999X"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v = 12345;
        if (config_parse_size(bad[i], &v) != -EINVAL)
            fail_msg("\"%s\" should be -EINVAL", bad[i]);
        assert_int_equal(v, 12345); /* untouched on error */
    }
    uint64_t v;
    assert_int_equal(config_parse_size(NULL, &v), -EINVAL);
    assert_int_equal(config_parse_size("99999999999G", &v), -ERANGE);
    assert_int_equal(config_parse_size("18446744073709551616", &v), -ERANGE);
    assert_int_equal(config_parse_size("17179869184G", &v), -ERANGE);
    assert_int_equal(config_parse_size("17592186044416M", &v), -ERANGE);
}

static void test_size_text(void **state)
{
    char buf[24];
    assert_string_equal(config_size_text(0, buf, sizeof(buf)), "0");
    assert_string_equal(config_size_text(4097, buf, sizeof(buf)), "4097");
    assert_string_equal(config_size_text(4096, buf, sizeof(buf)), "4K");
    assert_string_equal(config_size_text(CONFIG_MIN_MEMORY, buf, sizeof(buf)), "4M");
    assert_string_equal(config_size_text(1536ULL << 20, buf, sizeof(buf)), "1536M");
    assert_string_equal(config_size_text(CONFIG_MAX_MEMORY, buf, sizeof(buf)), "1024G");
}

static void test_quote(void **state)
{
    char buf[CONFIG_QUOTE_SIZE];
    assert_string_equal(config_quote("plain/path.elf", buf, sizeof(buf)), "plain/path.elf");
    assert_string_equal(config_quote("", buf, sizeof(buf)), "");
    assert_string_equal(config_quote("a\nb\tc\x01\x7f", buf, sizeof(buf)), "a\\nb\\tc\\x01\\x7f");
    assert_string_equal(config_quote("caf\xc3\xa9", buf, sizeof(buf)), "caf\xc3\xa9");

    char small[8];
    assert_string_equal(config_quote("1234567", small, sizeof(small)), "1234567");
    assert_string_equal(config_quote("12345678", small, sizeof(small)), "1234...");
    assert_string_equal(config_quote("\n\n\n\n", small, sizeof(small)), "\\n\\n...");
    /* The cut never splits a UTF-8 sequence: "é" is 2 bytes. */
    assert_string_equal(config_quote("123\xc3\xa9xyz", small, sizeof(small)), "123...");
    char tiny[3] = "ab";
    assert_string_equal(config_quote("long", tiny, sizeof(tiny)), "");

    char *huge = malloc(10000);
    memset(huge, 'x', 9999);
    huge[9999] = '\0';
    config_quote(huge, buf, sizeof(buf));
    assert_int_equal(strlen(buf), sizeof(buf) - 1);
    assert_string_equal(buf + sizeof(buf) - 4, "...");
    free(huge);
}

static void expect_rejected(int r, const struct error *err, const char *message)
{
    assert_int_equal(r, -EINVAL);
    assert_string_equal(err->msg, message);
}

static void test_checks(void **state)
{
    struct error err;
    assert_int_equal(config_check_cpus("--cpus", "1", 1, &err), 0);
    assert_int_equal(config_check_cpus("--cpus", "254", CONFIG_MAX_CPUS, &err), 0);
    expect_rejected(config_check_cpus("--cpus", "0", 0, &err), &err,
                    "--cpus: '0' is not a valid vCPU count (expected 1 to 254)");
    expect_rejected(config_check_cpus("--cpus", "255", 255, &err), &err,
                    "--cpus: '255' is not a valid vCPU count (expected 1 to 254)");

    assert_int_equal(config_check_memory("--memory", "4M", CONFIG_MIN_MEMORY, &err), 0);
    assert_int_equal(config_check_memory("--memory", "1024G", CONFIG_MAX_MEMORY, &err), 0);
    expect_rejected(config_check_memory("--memory", "4M-1", CONFIG_MIN_MEMORY - 4096, &err), &err,
                    "--memory: '4M-1' is out of range (expected 4M to 1024G)");
    expect_rejected(config_check_memory("--memory", "x", CONFIG_MAX_MEMORY + 4096, &err), &err,
                    "--memory: 'x' is out of range (expected 4M to 1024G)");
    expect_rejected(
        config_check_memory("--memory", "y", CONFIG_MIN_MEMORY + 1, &err), &err,
        "--memory: 'y' is not a multiple of 4 KiB (expected whole pages, e.g. 4198400)");

    assert_int_equal(config_check_cmdline("--cmdline", "", &err), 0);
}

struct files {
    char dir[64];
    char kernel[96];
    char initrd[96];
    char unreadable[96];
};

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int make_files(void **state)
{
    struct files *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/kiln-test-config-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->kernel, sizeof(f->kernel), "%s/kernel", f->dir);
    snprintf(f->initrd, sizeof(f->initrd), "%s/initrd", f->dir);
    snprintf(f->unreadable, sizeof(f->unreadable), "%s/unreadable", f->dir);
    write_file(f->kernel, "not really a kernel");
    write_file(f->initrd, "not really an initrd");
    write_file(f->unreadable, "secret");
    chmod(f->unreadable, 0);
    *state = f;
    return 0;
}

static int remove_files(void **state)
{
    struct files *f = *state;
    unlink(f->kernel);
    unlink(f->initrd);
    unlink(f->unreadable);
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
    assert_null(strchr(err.msg, '\n'));
    config_free(cfg);
}

static void test_validate_accepts(void **state)
{
    struct files *f = *state;
    struct vm_config cfg;
    struct error err;

    valid_config(&cfg, f->kernel);
    assert_int_equal(config_validate(&cfg, &err), 0);
    config_free(&cfg);

    valid_config(&cfg, f->kernel);
    cfg.initrd_path = strdup(f->initrd);
    cfg.cpus = CONFIG_MAX_CPUS;
    cfg.memory_bytes = CONFIG_MAX_MEMORY;
    cfg.console = CONSOLE_FILE;
    cfg.console_path = strdup("/nonexistent/dir/is/fine/until/the/vm/starts");
    assert_int_equal(config_validate(&cfg, &err), 0);
    config_free(&cfg);
}

static void test_validate_numbers(void **state)
{
    struct files *f = *state;
    struct vm_config cfg;

    config_init(&cfg);
    expect_invalid(&cfg, "--kernel: missing (expected the path of a kernel image: bzImage, ELF "
                         "vmlinux or PVH ELF)");

    valid_config(&cfg, f->kernel);
    cfg.cpus = 0;
    expect_invalid(&cfg, "--cpus: '0' is not a valid vCPU count (expected 1 to 254)");

    valid_config(&cfg, f->kernel);
    cfg.cpus = 255;
    expect_invalid(&cfg, "--cpus: '255' is not a valid vCPU count (expected 1 to 254)");

    valid_config(&cfg, f->kernel);
    cfg.memory_bytes = 1 << 20;
    expect_invalid(&cfg, "--memory: '1M' is out of range (expected 4M to 1024G)");

    valid_config(&cfg, f->kernel);
    cfg.memory_bytes = 2ULL << 40;
    expect_invalid(&cfg, "--memory: '2048G' is out of range (expected 4M to 1024G)");

    valid_config(&cfg, f->kernel);
    cfg.memory_bytes = (8 << 20) + 1;
    expect_invalid(&cfg, "--memory: '8388609' is not a multiple of 4 KiB (expected whole pages, "
                         "e.g. 8392704)");

    valid_config(&cfg, f->kernel);
    free(cfg.cmdline);
    cfg.cmdline = calloc(1, CONFIG_MAX_CMDLINE + 2);
    memset(cfg.cmdline, 'a', CONFIG_MAX_CMDLINE + 1);
    expect_invalid(&cfg, "--cmdline: 65536 bytes is too long (expected at most 65535)");

    valid_config(&cfg, f->kernel);
    cfg.console = CONSOLE_FILE;
    expect_invalid(&cfg, "--console: 'file:' needs a path (expected file:PATH)");
}

/* The two consoles together: one virtio-console, one stdin, two different sockets. */
static void test_validate_consoles(void **state)
{
    struct files *f = *state;
    struct vm_config cfg;

    valid_config(&cfg, f->kernel);
    cfg.vconsole = true;
    cfg.vconsole_kind = CONSOLE_PTY;
    struct error err;
    assert_int_equal(config_validate(&cfg, &err), 0);

    cfg.vconsole_kind = CONSOLE_STDIO;
    expect_invalid(&cfg, "--vconsole: stdio is already the serial console's (expected file:PATH, "
                         "socket:PATH, pty or none, or the serial console on another sink)");

    valid_config(&cfg, f->kernel);
    cfg.vconsole = true;
    cfg.console_device = CONSOLE_ON_VIRTIO;
    expect_invalid(&cfg, "--vconsole: the console is already on virtio-console (expected either a "
                         "virtio console or a second console beside the serial one, not both)");

    valid_config(&cfg, f->kernel);
    cfg.console = cfg.vconsole_kind = CONSOLE_SOCKET;
    cfg.vconsole = true;
    cfg.console_path = strdup("/tmp/a.sock");
    cfg.vconsole_path = strdup("/tmp/a.sock");
    expect_invalid(&cfg, "--vconsole: the serial console listens on the same socket (expected "
                         "another path)");

    valid_config(&cfg, f->kernel);
    cfg.console = CONSOLE_SOCKET;
    cfg.console_path = calloc(1, 200);
    memset(cfg.console_path, 's', 108);
    expect_invalid(&cfg, "--console: the socket path is 108 bytes long (expected at most 107)");
}

static void test_validate_files(void **state)
{
    struct files *f = *state;
    struct vm_config cfg;
    char expected[200];

    valid_config(&cfg, "/nonexistent/vmlinux");
    expect_invalid(&cfg, "--kernel: '/nonexistent/vmlinux': No such file or directory (expected "
                         "a kernel image file)");

    valid_config(&cfg, f->dir);
    snprintf(expected, sizeof(expected),
             "--kernel: '%s' is a directory (expected a kernel image "
             "file)",
             f->dir);
    expect_invalid(&cfg, expected);

    valid_config(&cfg, "/dev/null");
    expect_invalid(&cfg,
                   "--kernel: '/dev/null' is not a regular file (expected a kernel image file)");

    valid_config(&cfg, "/tmp/kiln\nnot-there");
    expect_invalid(&cfg, "--kernel: '/tmp/kiln\\nnot-there': No such file or directory (expected "
                         "a kernel image file)");

    valid_config(&cfg, f->kernel);
    cfg.initrd_path = strdup("/nonexistent/initrd");
    expect_invalid(&cfg, "--initrd: '/nonexistent/initrd': No such file or directory (expected "
                         "an initrd file)");

    valid_config(&cfg, f->kernel);
    cfg.initrd_path = strdup(f->dir);
    snprintf(expected, sizeof(expected), "--initrd: '%s' is a directory (expected an initrd file)",
             f->dir);
    expect_invalid(&cfg, expected);

    valid_config(&cfg, f->kernel);
    cfg.initrd_path = strdup("");
    expect_invalid(&cfg, "--initrd: '': No such file or directory (expected an initrd file)");
}

static void test_validate_unreadable(void **state)
{
    struct files *f = *state;
    if (geteuid() == 0) {
        fprintf(stderr, "SKIP: running as root, every file is readable\n");
        skip();
    }
    struct vm_config cfg;
    char expected[200];
    valid_config(&cfg, f->unreadable);
    snprintf(expected, sizeof(expected),
             "--kernel: '%s': Permission denied (expected a kernel image file)", f->unreadable);
    expect_invalid(&cfg, expected);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_and_free),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_bad_sizes),
        cmocka_unit_test(test_size_text),
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_checks),
        cmocka_unit_test_setup_teardown(test_validate_accepts, make_files, remove_files),
        cmocka_unit_test_setup_teardown(test_validate_numbers, make_files, remove_files),
        cmocka_unit_test_setup_teardown(test_validate_consoles, make_files, remove_files),
        cmocka_unit_test_setup_teardown(test_validate_files, make_files, remove_files),
        cmocka_unit_test_setup_teardown(test_validate_unreadable, make_files, remove_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
