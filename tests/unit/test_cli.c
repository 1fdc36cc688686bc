/* Unit tests for `kiln` argument parsing: every flag in both spellings, defaults, help and
 * version, and the exact one-line message for each kind of bad flag or value. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kiln/cli.h"

#define ARGV(...)            ((char *[]){"kiln", __VA_ARGS__, NULL})
#define ARGC(...)            ((int)(sizeof((char *[]){"kiln", __VA_ARGS__}) / sizeof(char *)))
#define PARSE(req, err, ...) cli_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), (req), (err))

static void expect_error(int r, const struct error *err, const char *message)
{
    assert_true(r < 0);
    assert_string_equal(err->msg, message);
    assert_null(strchr(err->msg, '\n'));
}

static void test_defaults(void **state)
{
    struct cli_request req;
    struct error err;
    assert_int_equal(PARSE(&req, &err, "run", "--kernel", "vmlinux"), 0);
    assert_int_equal(req.action, CLI_ACTION_RUN);
    assert_string_equal(req.config.kernel_path, "vmlinux");
    assert_null(req.config.initrd_path);
    assert_string_equal(req.config.cmdline, "");
    assert_int_equal(req.config.cpus, 1);
    assert_int_equal(req.config.memory_bytes, 256ULL << 20);
    assert_int_equal(req.config.console, CONSOLE_STDIO);
    assert_int_equal(req.config.log_level, LOG_WARN);
    cli_request_free(&req);
}

static void test_every_flag_both_spellings(void **state)
{
    struct cli_request req;
    struct error err;
    assert_int_equal(PARSE(&req, &err, "run", "--kernel", "k", "--initrd", "i", "--cmdline",
                           "console=ttyS0 quiet", "--cpus", "4", "--memory", "2G", "--console",
                           "file:/tmp/c.log", "--log-level", "debug"),
                     0);
    assert_string_equal(req.config.kernel_path, "k");
    assert_string_equal(req.config.initrd_path, "i");
    assert_string_equal(req.config.cmdline, "console=ttyS0 quiet");
    assert_int_equal(req.config.cpus, 4);
    assert_int_equal(req.config.memory_bytes, 2ULL << 30);
    assert_int_equal(req.config.console, CONSOLE_FILE);
    assert_string_equal(req.config.console_path, "/tmp/c.log");
    assert_int_equal(req.config.log_level, LOG_DEBUG);
    cli_request_free(&req);

    assert_int_equal(PARSE(&req, &err, "run", "--kernel=k", "--initrd=i", "--cmdline=a=b c",
                           "--cpus=2", "--memory=512M", "--console=none", "--log-level=info"),
                     0);
    assert_string_equal(req.config.kernel_path, "k");
    assert_string_equal(req.config.cmdline, "a=b c");
    assert_int_equal(req.config.cpus, 2);
    assert_int_equal(req.config.memory_bytes, 512ULL << 20);
    assert_int_equal(req.config.console, CONSOLE_NONE);
    assert_int_equal(req.config.log_level, LOG_INFO);
    cli_request_free(&req);
}

static void test_help_and_version(void **state)
{
    struct cli_request req;
    struct error err;
    assert_int_equal(PARSE(&req, &err, "--help"), 0);
    assert_int_equal(req.action, CLI_ACTION_HELP);
    cli_request_free(&req);
    assert_int_equal(PARSE(&req, &err, "help"), 0);
    assert_int_equal(req.action, CLI_ACTION_HELP);
    cli_request_free(&req);
    assert_int_equal(PARSE(&req, &err, "--version"), 0);
    assert_int_equal(req.action, CLI_ACTION_VERSION);
    cli_request_free(&req);
    assert_int_equal(PARSE(&req, &err, "-V"), 0);
    assert_int_equal(req.action, CLI_ACTION_VERSION);
    cli_request_free(&req);
    /* --help wins even next to bad flags: a user asking for help gets it. */
    assert_int_equal(PARSE(&req, &err, "run", "--cpus", "zero", "--help"), 0);
    assert_int_equal(req.action, CLI_ACTION_RUN_HELP);
    cli_request_free(&req);
}

static void test_help_lists_every_flag(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    cli_print_run_help(out);
    fclose(out);
    const char *flags[] = {"--kernel", "--initrd",  "--cmdline",   "--cpus",
                           "--memory", "--console", "--log-level", "125"};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        assert_non_null(strstr(text, flags[i]));
    free(text);
}

static void test_command_errors(void **state)
{
    struct cli_request req;
    struct error err;
    expect_error(cli_parse(1, (char *[]){"kiln", NULL}, &req, &err), &err,
                 "missing command (expected 'kiln run --kernel PATH ...'; see 'kiln --help')");
    expect_error(PARSE(&req, &err, "rnu"), &err, "unknown command 'rnu' (did you mean 'run'?)");
    expect_error(PARSE(&req, &err, "destroy"), &err,
                 "unknown command 'destroy' (expected 'run'; see 'kiln --help')");
    expect_error(PARSE(&req, &err, "--kernel", "x"), &err,
                 "unknown flag '--kernel' for 'kiln' (expected a command such as 'run', or "
                 "--help / --version)");
}

static void test_flag_errors(void **state)
{
    struct cli_request req;
    struct error err;
    expect_error(PARSE(&req, &err, "run"), &err,
                 "--kernel: missing (expected the path of a kernel image: bzImage, ELF vmlinux "
                 "or PVH ELF)");
    expect_error(PARSE(&req, &err, "run", "--kernal", "k"), &err,
                 "unknown flag '--kernal' for 'kiln run' (did you mean '--kernel'?)");
    expect_error(PARSE(&req, &err, "run", "--turbo"), &err,
                 "unknown flag '--turbo' for 'kiln run' (see 'kiln run --help')");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--cpus"), &err,
                 "--cpus: missing value (expected N)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "a", "--kernel", "b"), &err,
                 "--kernel given twice (expected it once)");
    expect_error(PARSE(&req, &err, "run", "--kernel", ""), &err,
                 "--kernel: empty path (expected the path of a kernel image)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "vm.yaml"), &err,
                 "unexpected argument 'vm.yaml' (YAML VM definitions are not supported yet; use "
                 "flags such as --kernel PATH)");
}

static void test_value_errors(void **state)
{
    struct cli_request req;
    struct error err;
    const char *cpus_bad[] = {"0", "abc", "255", "-1", "2x", "", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(cpus_bad) / sizeof(cpus_bad[0]); i++) {
        char expected[128];
        snprintf(expected, sizeof(expected),
                 "--cpus: '%s' is not a valid vCPU count (expected 1 to 254)", cpus_bad[i]);
        expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--cpus", (char *)cpus_bad[i]), &err,
                     expected);
    }
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--memory", "12Q"), &err,
                 "--memory: '12Q' is not a size (expected a number with an optional K, M or G "
                 "suffix, e.g. 512M)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--memory", "1M"), &err,
                 "--memory: '1M' is out of range (expected 4M to 1024G)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--memory", "2048G"), &err,
                 "--memory: '2048G' is out of range (expected 4M to 1024G)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--memory", "8388609"), &err,
                 "--memory: '8388609' is not a multiple of 4 KiB (expected e.g. 512M)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--console", "serial"), &err,
                 "--console: 'serial' is not a console (expected stdio, file:PATH or none)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--console", "file:"), &err,
                 "--console: 'file:' needs a path (expected file:PATH)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--log-level", "loud"), &err,
                 "--log-level: 'loud' is not a log level (expected error, warn, info or debug)");

    char *long_cmdline = malloc(65537);
    memset(long_cmdline, 'a', 65536);
    long_cmdline[65536] = '\0';
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--cmdline", long_cmdline), &err,
                 "--cmdline: 65536 bytes is too long (expected at most 65535)");
    long_cmdline[65535] = '\0';
    assert_int_equal(PARSE(&req, &err, "run", "--kernel", "k", "--cmdline", long_cmdline), 0);
    cli_request_free(&req);
    free(long_cmdline);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),         cmocka_unit_test(test_every_flag_both_spellings),
        cmocka_unit_test(test_help_and_version), cmocka_unit_test(test_help_lists_every_flag),
        cmocka_unit_test(test_command_errors),   cmocka_unit_test(test_flag_errors),
        cmocka_unit_test(test_value_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
