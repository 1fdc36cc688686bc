/* Unit tests for `kiln` argument parsing: every flag in both spellings, defaults, help and
 * version, and the exact one-line message for each kind of bad flag or value. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/config/cli.h"

#define ARGV(...)            ((char *[]){"kiln", __VA_ARGS__, NULL})
#define ARGC(...)            ((int)(sizeof((char *[]){"kiln", __VA_ARGS__}) / sizeof(char *)))
#define PARSE(req, err, ...) cli_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), (req), (err))

/* Every error path must leave nothing to free: cli_parse frees on failure, and the ASan build
 * runs these tests with leak detection, so a leak on any path below fails the run. */
static void expect_error(int r, const struct error *err, const char *message)
{
    assert_int_equal(r, -EINVAL);
    assert_string_equal(err->msg, message);
    assert_null(strchr(err->msg, '\n'));
}

/* `kiln run --kernel k FLAG VALUE` or `kiln run --kernel k FLAG=VALUE`. */
static int parse_flag(struct cli_request *req, struct error *err, const char *flag,
                      const char *value, bool with_equals)
{
    char joined[256];
    snprintf(joined, sizeof(joined), "%s=%s", flag, value);
    if (with_equals)
        return PARSE(req, err, "run", "--kernel", "k", joined);
    return PARSE(req, err, "run", "--kernel", "k", (char *)flag, (char *)value);
}

static void test_defaults(void **state)
{
    struct cli_request req;
    struct error err;
    assert_int_equal(PARSE(&req, &err, "run", "--kernel", "vmlinux"), 0);
    assert_int_equal(req.action, CLI_ACTION_RUN);
    assert_string_equal(req.config.kernel_path, "vmlinux");
    assert_null(req.config.initrd_path);
    assert_non_null(req.config.cmdline);
    assert_string_equal(req.config.cmdline, "");
    assert_int_equal(req.config.cpus, CONFIG_DEFAULT_CPUS);
    assert_int_equal(req.config.cpus, 1);
    assert_int_equal(req.config.memory_bytes, 256ULL << 20);
    assert_int_equal(req.config.console, CONSOLE_STDIO);
    assert_null(req.config.console_path);
    assert_int_equal(req.config.log_level, LOG_WARN);
    cli_request_free(&req);
}

static void test_each_flag_both_spellings(void **state)
{
    for (int equals = 0; equals <= 1; equals++) {
        struct cli_request req;
        struct error err;
        assert_int_equal(parse_flag(&req, &err, "--initrd", "initrd.img", equals), 0);
        assert_string_equal(req.config.initrd_path, "initrd.img");
        cli_request_free(&req);

        assert_int_equal(parse_flag(&req, &err, "--cmdline", "console=ttyS0 quiet", equals), 0);
        assert_string_equal(req.config.cmdline, "console=ttyS0 quiet");
        cli_request_free(&req);

        assert_int_equal(parse_flag(&req, &err, "--cpus", "4", equals), 0);
        assert_int_equal(req.config.cpus, 4);
        cli_request_free(&req);

        assert_int_equal(parse_flag(&req, &err, "--memory", "2G", equals), 0);
        assert_int_equal(req.config.memory_bytes, 2ULL << 30);
        cli_request_free(&req);

        assert_int_equal(parse_flag(&req, &err, "--console", "file:/tmp/c.log", equals), 0);
        assert_int_equal(req.config.console, CONSOLE_FILE);
        assert_string_equal(req.config.console_path, "/tmp/c.log");
        cli_request_free(&req);

        assert_int_equal(parse_flag(&req, &err, "--log-level", "debug", equals), 0);
        assert_int_equal(req.config.log_level, LOG_DEBUG);
        cli_request_free(&req);

        assert_int_equal(equals ? PARSE(&req, &err, "run", "--kernel=/boot/vmlinux")
                                : PARSE(&req, &err, "run", "--kernel", "/boot/vmlinux"),
                         0);
        assert_string_equal(req.config.kernel_path, "/boot/vmlinux");
        cli_request_free(&req);
    }
}

static void test_all_flags_together(void **state)
{
    struct cli_request req;
    struct error err;
    assert_int_equal(PARSE(&req, &err, "run", "--log-level=info", "--console", "none", "--cpus=2",
                           "--memory", "512M", "--cmdline=a=b c", "--initrd", "i", "--kernel=k"),
                     0);
    assert_int_equal(req.action, CLI_ACTION_RUN);
    assert_string_equal(req.config.kernel_path, "k");
    assert_string_equal(req.config.initrd_path, "i");
    assert_string_equal(req.config.cmdline, "a=b c");
    assert_int_equal(req.config.cpus, 2);
    assert_int_equal(req.config.memory_bytes, 512ULL << 20);
    assert_int_equal(req.config.console, CONSOLE_NONE);
    assert_null(req.config.console_path);
    assert_int_equal(req.config.log_level, LOG_INFO);
    cli_request_free(&req);
}

static void test_good_values(void **state)
{
    struct cli_request req;
    struct error err;
    static const struct {
        const char *text;
        uint64_t bytes;
    } memory[] = {
        {"4M", 4ULL << 20},       {"4096K", 4ULL << 20},    {"8388608", 8ULL << 20},
        {"1024G", 1ULL << 40},    {"512MiB", 512ULL << 20}, {"1gb", 1ULL << 30},
        {"8196K", 8196ULL << 10}, /* a K size is fine when it is whole pages */
    };
    for (size_t i = 0; i < sizeof(memory) / sizeof(memory[0]); i++) {
        assert_int_equal(parse_flag(&req, &err, "--memory", memory[i].text, false), 0);
        assert_int_equal(req.config.memory_bytes, memory[i].bytes);
        cli_request_free(&req);
    }
    static const struct {
        const char *text;
        unsigned cpus;
    } cpus[] = {{"1", 1}, {"254", 254}, {"007", 7}};
    for (size_t i = 0; i < sizeof(cpus) / sizeof(cpus[0]); i++) {
        assert_int_equal(parse_flag(&req, &err, "--cpus", cpus[i].text, true), 0);
        assert_int_equal(req.config.cpus, cpus[i].cpus);
        cli_request_free(&req);
    }
    const char *levels[] = {"error", "warn", "info", "debug"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(parse_flag(&req, &err, "--log-level", levels[i], false), 0);
        assert_int_equal(req.config.log_level, (enum log_level)i);
        cli_request_free(&req);
    }
    assert_int_equal(parse_flag(&req, &err, "--console", "stdio", false), 0);
    assert_int_equal(req.config.console, CONSOLE_STDIO);
    cli_request_free(&req);
    assert_int_equal(parse_flag(&req, &err, "--console", "file:a:b=c", true), 0);
    assert_string_equal(req.config.console_path, "a:b=c");
    cli_request_free(&req);
}

static void test_cmdline_values(void **state)
{
    struct cli_request req;
    struct error err;
    assert_int_equal(parse_flag(&req, &err, "--cmdline", "", true), 0);
    assert_string_equal(req.config.cmdline, "");
    cli_request_free(&req);
    /* Values that look like options are still values, unless they are one of our flags. */
    assert_int_equal(parse_flag(&req, &err, "--cmdline", "-- init=/bin/sh", false), 0);
    assert_string_equal(req.config.cmdline, "-- init=/bin/sh");
    cli_request_free(&req);
    assert_int_equal(parse_flag(&req, &err, "--cmdline", "-v", false), 0);
    assert_string_equal(req.config.cmdline, "-v");
    cli_request_free(&req);
    assert_int_equal(parse_flag(&req, &err, "--cmdline", "--cpus", true), 0);
    assert_string_equal(req.config.cmdline, "--cpus");
    cli_request_free(&req);

    char *longest = malloc(CONFIG_MAX_CMDLINE + 2);
    memset(longest, 'a', CONFIG_MAX_CMDLINE + 1);
    longest[CONFIG_MAX_CMDLINE + 1] = '\0';
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--cmdline", longest), &err,
                 "--cmdline: 65536 bytes is too long (expected at most 65535)");
    longest[CONFIG_MAX_CMDLINE] = '\0';
    assert_int_equal(PARSE(&req, &err, "run", "--kernel", "k", "--cmdline", longest), 0);
    assert_int_equal(strlen(req.config.cmdline), 65535);
    cli_request_free(&req);
    free(longest);
}

static void expect_action(enum cli_action action, int argc, char **argv)
{
    struct cli_request req;
    struct error err;
    assert_int_equal(cli_parse(argc, argv, &req, &err), 0);
    assert_int_equal(req.action, action);
    cli_request_free(&req);
}

#define EXPECT_ACTION(action, ...) expect_action((action), ARGC(__VA_ARGS__), ARGV(__VA_ARGS__))

static void test_help_and_version(void **state)
{
    EXPECT_ACTION(CLI_ACTION_HELP, "--help");
    EXPECT_ACTION(CLI_ACTION_HELP, "-h");
    EXPECT_ACTION(CLI_ACTION_HELP, "help");
    EXPECT_ACTION(CLI_ACTION_HELP, "--help", "whatever");
    EXPECT_ACTION(CLI_ACTION_RUN_HELP, "help", "run");
    EXPECT_ACTION(CLI_ACTION_HELP, "help", "help");
    EXPECT_ACTION(CLI_ACTION_HELP, "help", "version");
    EXPECT_ACTION(CLI_ACTION_VERSION, "--version");
    EXPECT_ACTION(CLI_ACTION_VERSION, "-V");
    EXPECT_ACTION(CLI_ACTION_VERSION, "version");
    EXPECT_ACTION(CLI_ACTION_RUN_HELP, "run", "--help");
    EXPECT_ACTION(CLI_ACTION_RUN_HELP, "run", "-h");
    /* --help wins even next to bad flags: a user asking for help gets it. */
    EXPECT_ACTION(CLI_ACTION_RUN_HELP, "run", "--cpus", "zero", "--bogus", "--help");
    EXPECT_ACTION(CLI_ACTION_RUN_HELP, "run", "--kernel", "--help");
    /* A flag's value is never taken to be a request for help: `--cmdline -h` asks for help
     * (the next word is one of our flags), `--cmdline=-h` passes "-h" to the guest. */
    EXPECT_ACTION(CLI_ACTION_RUN_HELP, "run", "--kernel", "k", "--cmdline", "-h");
    struct cli_request req;
    struct error err;
    assert_int_equal(PARSE(&req, &err, "run", "--kernel", "k", "--cmdline=-h"), 0);
    assert_int_equal(req.action, CLI_ACTION_RUN);
    assert_string_equal(req.config.cmdline, "-h");
    cli_request_free(&req);
}

static char *capture(void (*print)(FILE *))
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    print(out);
    fclose(out);
    return text;
}

static void expect_all(const char *text, const char *const *needles, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!strstr(text, needles[i]))
            fail_msg("help text lacks \"%s\":\n%s", needles[i], text);
    }
}

static void test_help_text(void **state)
{
    char *text = capture(cli_print_run_help);
    static const char *const run_help[] = {
        "usage: kiln run --kernel PATH",
        "--kernel PATH",
        "--initrd PATH",
        "(default: none)",
        "--cmdline STR",
        "(default: empty)",
        "--cpus N[,pin=LIST]",
        "(default: 1)",
        "--memory SIZE[,OPTIONS]",
        "(default: 256M)",
        "--console SINK",
        "the console on ttyS0: stdio, file:PATH, socket:PATH, pty or none;",
        "virtio[:SINK] puts it on hvc0 instead (default: stdio)",
        "--vconsole SINK",
        "add a virtio-console (hvc0) beside ttyS0, on a sink:",
        "--log-level LEVEL",
        "(default: warn)",
        "--help",
        "exit status:",
        "123 ",
        "125 ",
        "126 ",
        "130/143",
    };
    expect_all(text, run_help, sizeof(run_help) / sizeof(run_help[0]));
    assert_int_equal(text[strlen(text) - 1], '\n');
    free(text);

    text = capture(cli_print_help);
    static const char *const help[] = {"kiln run --kernel PATH", "--help", "--version",
                                       "KILN_KVM_DEVICE", KILN_VERSION};
    expect_all(text, help, sizeof(help) / sizeof(help[0]));
    assert_int_equal(text[strlen(text) - 1], '\n');
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
                 "unknown command 'destroy' (expected run, validate or config; see 'kiln "
                 "--help')");
    expect_error(PARSE(&req, &err, "help", "rn"), &err,
                 "unknown command 'rn' for 'kiln help' (did you mean 'run'?)");
    expect_error(PARSE(&req, &err, "--kernel", "x"), &err,
                 "unknown flag '--kernel' for 'kiln' (did you mean 'kiln run --kernel'?)");
    expect_error(PARSE(&req, &err, "--hlep"), &err,
                 "unknown flag '--hlep' for 'kiln' (did you mean '--help'?)");
    expect_error(PARSE(&req, &err, "--frobnicate"), &err,
                 "unknown flag '--frobnicate' for 'kiln' (expected a command such as 'run', or "
                 "--help / --version)");
}

static void test_flag_errors(void **state)
{
    struct cli_request req;
    struct error err;
    expect_error(PARSE(&req, &err, "run"), &err,
                 "--kernel: missing (expected the path of a kernel image: bzImage, ELF vmlinux "
                 "or PVH ELF)");
    expect_error(PARSE(&req, &err, "run", "--memory", "1G"), &err,
                 "--kernel: missing (expected the path of a kernel image: bzImage, ELF vmlinux "
                 "or PVH ELF)");
    expect_error(PARSE(&req, &err, "run", "--kernal", "k"), &err,
                 "unknown flag '--kernal' for 'kiln run' (did you mean '--kernel'?)");
    expect_error(PARSE(&req, &err, "run", "--kernal=k"), &err,
                 "unknown flag '--kernal' for 'kiln run' (did you mean '--kernel'?)");
    expect_error(PARSE(&req, &err, "run", "-kernel", "k"), &err,
                 "unknown flag '-kernel' for 'kiln run' (did you mean '--kernel'?)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--mem", "1G"), &err,
                 "unknown flag '--mem' for 'kiln run' (did you mean '--memory'?)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--c", "1"), &err,
                 "unknown flag '--c' for 'kiln run' (see 'kiln run --help')");
    expect_error(PARSE(&req, &err, "run", "--turbo"), &err,
                 "unknown flag '--turbo' for 'kiln run' (see 'kiln run --help')");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--help=yes"), &err,
                 "--help takes no value (expected '--help' alone)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--cpus"), &err,
                 "--cpus: missing value (expected a vCPU count from 1 to 254)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "--cpus", "2"), &err,
                 "--kernel: missing value (expected the path of a kernel image: bzImage, ELF "
                 "vmlinux or PVH ELF)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--memory"), &err,
                 "--memory: missing value (expected a size such as 512M)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "a", "--kernel", "b"), &err,
                 "--kernel given twice (expected it once)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--cpus=1", "--cpus", "2"), &err,
                 "--cpus given twice (expected it once)");
    expect_error(PARSE(&req, &err, "run", "--kernel", ""), &err,
                 "--kernel: empty path (expected the path of a kernel image: bzImage, ELF "
                 "vmlinux or PVH ELF)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--initrd="), &err,
                 "--initrd: empty path (expected the path of an initial ramdisk)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "vm.yaml", "other.yaml"), &err,
                 "unexpected argument 'other.yaml' (expected one VM definition file, and "
                 "'vm.yaml' is one)");
    expect_error(PARSE(&req, &err, "validate", "a.yaml", "b.yaml"), &err,
                 "unexpected argument 'b.yaml' (expected one VM definition file, and 'a.yaml' is "
                 "one)");
}

static void test_cpus_errors(void **state)
{
    const char *bad[] = {
        "0", "abc", "255", "999", "-1", "+2", " 2", "2x", "1.0", "", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cli_request req;
        struct error err;
        char expected[128];
        snprintf(expected, sizeof(expected),
                 "--cpus: '%s' is not a valid vCPU count (expected 1 to 254)", bad[i]);
        expect_error(parse_flag(&req, &err, "--cpus", bad[i], i % 2), &err, expected);
    }
}

static void test_memory_errors(void **state)
{
    struct cli_request req;
    struct error err;
    const char *not_sizes[] = {"12Q", "", "M", "-1", "1.5G", " 1M", "1T", "0x100000"};
    for (size_t i = 0; i < sizeof(not_sizes) / sizeof(not_sizes[0]); i++) {
        char expected[160];
        snprintf(expected, sizeof(expected),
                 "--memory: '%s' is not a size (expected a number with an optional K, M or G "
                 "suffix, e.g. 512M)",
                 not_sizes[i]);
        expect_error(parse_flag(&req, &err, "--memory", not_sizes[i], i % 2), &err, expected);
    }
    const char *out_of_range[] = {
        "1M", "0", "4095K", "1025G", "99999999999G", "18446744073709551616"};
    for (size_t i = 0; i < sizeof(out_of_range) / sizeof(out_of_range[0]); i++) {
        char expected[160];
        snprintf(expected, sizeof(expected),
                 "--memory: '%s' is out of range (expected 4M to 1024G)", out_of_range[i]);
        expect_error(parse_flag(&req, &err, "--memory", out_of_range[i], i % 2), &err, expected);
    }
    expect_error(parse_flag(&req, &err, "--memory", "8388609", false), &err,
                 "--memory: '8388609' is not a multiple of 4 KiB (expected whole pages, e.g. "
                 "8392704)");
    expect_error(parse_flag(&req, &err, "--memory", "8193K", true), &err,
                 "--memory: '8193K' is not a multiple of 4 KiB (expected whole pages, e.g. "
                 "8392704)");
}

static void test_console_and_log_errors(void **state)
{
    struct cli_request req;
    struct error err;
    expect_error(parse_flag(&req, &err, "--console", "serial", false), &err,
                 "--console: 'serial' is not a console (expected stdio, file:PATH, socket:PATH, "
                 "pty or none, "
                 "optionally after virtio:)");
    expect_error(parse_flag(&req, &err, "--console", "FILE:x", true), &err,
                 "--console: 'FILE:x' is not a console (expected stdio, file:PATH, socket:PATH, "
                 "pty or none, "
                 "optionally after virtio:)");
    expect_error(parse_flag(&req, &err, "--console", "", true), &err,
                 "--console: '' is not a console (expected stdio, file:PATH, socket:PATH, pty or "
                 "none, optionally "
                 "after virtio:)");
    expect_error(parse_flag(&req, &err, "--console", "file:", false), &err,
                 "--console: 'file:' needs a path (expected file:PATH)");
    expect_error(parse_flag(&req, &err, "--console", "file:", true), &err,
                 "--console: 'file:' needs a path (expected file:PATH)");
    expect_error(parse_flag(&req, &err, "--log-level", "loud", false), &err,
                 "--log-level: 'loud' is not a log level (expected error, warn, info or debug)");
    expect_error(parse_flag(&req, &err, "--log-level", "WARN", true), &err,
                 "--log-level: 'WARN' is not a log level (expected error, warn, info or debug)");
}

/* The Platform flags: reset action, shutdown grace period, host-compat mode, seccomp. */
static void test_virtio_console_flag(void **state)
{
    struct cli_request req;
    struct error err;
    assert_int_equal(parse_flag(&req, &err, "--console", "virtio", false), 0);
    assert_int_equal(req.config.console_device, CONSOLE_ON_VIRTIO);
    assert_int_equal(req.config.console, CONSOLE_STDIO);
    cli_request_free(&req);
    assert_int_equal(parse_flag(&req, &err, "--console", "virtio:file:hvc.log", true), 0);
    assert_int_equal(req.config.console_device, CONSOLE_ON_VIRTIO);
    assert_int_equal(req.config.console, CONSOLE_FILE);
    assert_string_equal(req.config.console_path, "hvc.log");
    cli_request_free(&req);
    assert_int_equal(parse_flag(&req, &err, "--console", "file:ttyS0.log", true), 0);
    assert_int_equal(req.config.console_device, CONSOLE_ON_SERIAL);
    cli_request_free(&req);
    expect_error(
        parse_flag(&req, &err, "--console", "virtio:tty", false), &err,
        "--console: 'tty' is not a console (expected stdio, file:PATH, socket:PATH, pty or none, "
        "optionally after virtio:)");
}

/* A console getter's text in buf, "(none)" for none. */
static const char *sink_text(int (*get)(const struct vm_config *, char **),
                             const struct vm_config *cfg, char *buf, size_t size)
{
    char *text = NULL;
    assert_int_equal(get(cfg, &text), 0);
    snprintf(buf, size, "%s", text ? text : "(none)");
    free(text);
    return buf;
}

/* The socket and pty sinks, and --vconsole beside the serial console. */
static void test_console_sinks_and_vconsole(void **state)
{
    struct cli_request req;
    struct error err;
    char text[64];
    assert_int_equal(parse_flag(&req, &err, "--console", "socket:/run/vm.sock", true), 0);
    assert_int_equal(req.config.console, CONSOLE_SOCKET);
    assert_string_equal(req.config.console_path, "/run/vm.sock");
    assert_string_equal(sink_text(config_console_text, &req.config, text, sizeof(text)),
                        "socket:/run/vm.sock");
    assert_false(req.config.vconsole);
    assert_string_equal(sink_text(config_vconsole_text, &req.config, text, sizeof(text)), "(none)");
    cli_request_free(&req);
    assert_int_equal(parse_flag(&req, &err, "--console", "virtio:pty", false), 0);
    assert_int_equal(req.config.console, CONSOLE_PTY);
    assert_int_equal(req.config.console_device, CONSOLE_ON_VIRTIO);
    assert_null(req.config.console_path);
    assert_string_equal(sink_text(config_console_text, &req.config, text, sizeof(text)),
                        "virtio:pty");
    cli_request_free(&req);
    assert_int_equal(parse_flag(&req, &err, "--vconsole", "pty", false), 0);
    assert_true(req.config.vconsole);
    assert_int_equal(req.config.vconsole_kind, CONSOLE_PTY);
    assert_int_equal(req.config.console, CONSOLE_STDIO); /* the serial console is untouched */
    assert_int_equal(req.config.console_device, CONSOLE_ON_SERIAL);
    assert_string_equal(sink_text(config_vconsole_text, &req.config, text, sizeof(text)), "pty");
    cli_request_free(&req);
    assert_int_equal(parse_flag(&req, &err, "--vconsole", "file:hvc.log", true), 0);
    assert_int_equal(req.config.vconsole_kind, CONSOLE_FILE);
    assert_string_equal(req.config.vconsole_path, "hvc.log");
    cli_request_free(&req);
    expect_error(parse_flag(&req, &err, "--vconsole", "socket:", false), &err,
                 "--vconsole: 'socket:' needs a path (expected socket:PATH)");
    expect_error(parse_flag(&req, &err, "--vconsole", "virtio", false), &err,
                 "--vconsole: 'virtio' is not a console (expected stdio, file:PATH, socket:PATH, "
                 "pty or none)");
}

static void test_platform_flags(void **state)
{
    struct cli_request req;
    struct error err;
    assert_int_equal(PARSE(&req, &err, "run", "--kernel", "k"), 0);
    assert_int_equal(req.config.on_reset, RESET_EXIT);
    assert_int_equal(req.config.shutdown_grace_seconds, 5);
    assert_int_equal(req.config.host_compat, HOST_COMPAT_AUTO);
    assert_int_equal(req.config.seccomp, SANDBOX_KILL);
    cli_request_free(&req);
    assert_int_equal(PARSE(&req, &err, "run", "--kernel", "k", "--on-reset", "restart",
                           "--shutdown-grace=0", "--host-compat", "off"),
                     0);
    assert_int_equal(req.config.on_reset, RESET_RESTART);
    assert_int_equal(req.config.shutdown_grace_seconds, 0);
    assert_int_equal(req.config.host_compat, HOST_COMPAT_OFF);
    cli_request_free(&req);
    assert_int_equal(PARSE(&req, &err, "run", "--kernel", "k", "--shutdown-grace", "3600",
                           "--host-compat=on", "--on-reset=exit"),
                     0);
    assert_int_equal(req.config.shutdown_grace_seconds, 3600);
    assert_int_equal(req.config.host_compat, HOST_COMPAT_ON);
    cli_request_free(&req);
    assert_int_equal(PARSE(&req, &err, "run", "--kernel", "k", "--seccomp", "off"), 0);
    assert_int_equal(req.config.seccomp, SANDBOX_OFF);
    cli_request_free(&req);
    assert_int_equal(PARSE(&req, &err, "run", "--kernel", "k", "--seccomp=log"), 0);
    assert_int_equal(req.config.seccomp, SANDBOX_LOG);
    cli_request_free(&req);

    expect_error(parse_flag(&req, &err, "--on-reset", "reboot", false), &err,
                 "--on-reset: 'reboot' is not valid (expected exit or restart)");
    expect_error(parse_flag(&req, &err, "--host-compat", "yes", true), &err,
                 "--host-compat: 'yes' is not valid (expected auto, on or off)");
    expect_error(parse_flag(&req, &err, "--seccomp", "bogus", true), &err,
                 "--seccomp: 'bogus' is not valid (expected off, log or kill)");
    expect_error(parse_flag(&req, &err, "--seccomp", "KILL", true), &err,
                 "--seccomp: 'KILL' is not valid (expected off, log or kill)");
    expect_error(parse_flag(&req, &err, "--vmgenid", "true", true), &err,
                 "--vmgenid: 'true' is not valid (expected on or off)");
    assert_int_equal(PARSE(&req, &err, "run", "--kernel", "k", "--vmgenid", "off"), 0);
    assert_false(req.config.vmgenid);
    cli_request_free(&req);
    assert_int_equal(PARSE(&req, &err, "run", "--kernel", "k"), 0);
    assert_true(req.config.vmgenid); /* on unless asked */
    cli_request_free(&req);
    const char *grace_bad[] = {"3601", "-1", "1.5", "", "5s", "999999"};
    for (size_t i = 0; i < sizeof(grace_bad) / sizeof(grace_bad[0]); i++) {
        char expected[128];
        snprintf(expected, sizeof(expected),
                 "--shutdown-grace: '%s' is not valid (expected a number of seconds from 0 to "
                 "3600)",
                 grace_bad[i]);
        expect_error(parse_flag(&req, &err, "--shutdown-grace", grace_bad[i], true), &err,
                     expected);
    }
}

/* User text in a message is escaped and shortened, so the message stays one readable line. */
static void test_errors_stay_one_line(void **state)
{
    struct cli_request req;
    struct error err;
    expect_error(parse_flag(&req, &err, "--console", "tty\nkiln: fake", false), &err,
                 "--console: 'tty\\nkiln: fake' is not a console (expected stdio, file:PATH, "
                 "socket:PATH, pty or none, optionally after virtio:)");
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "vm.yaml", "a\tb"), &err,
                 "unexpected argument 'a\\tb' (expected one VM definition file, and 'vm.yaml' is "
                 "one)");

    char long_value[2000];
    memset(long_value, 'x', sizeof(long_value) - 1);
    long_value[sizeof(long_value) - 1] = '\0';
    assert_int_equal(PARSE(&req, &err, "run", "--kernel", "k", "--log-level", long_value), -EINVAL);
    const char *tail = "...' is not a log level (expected error, warn, info or debug)";
    assert_non_null(strstr(err.msg, tail));
    assert_null(strchr(err.msg, '\n'));
    assert_true(strlen(err.msg) < sizeof(err.msg) - 1);
}

/* Errors after strings were copied in must still free them (ASan's leak check watches). */
static void test_request_free(void **state)
{
    struct cli_request req;
    struct error err;
    expect_error(PARSE(&req, &err, "run", "--kernel", "k", "--initrd", "i", "--cmdline", "c",
                       "--console", "file:log", "--cpus", "0"),
                 &err, "--cpus: '0' is not a valid vCPU count (expected 1 to 254)");
    assert_null(req.config.kernel_path);
    assert_null(req.config.cmdline);
    cli_request_free(&req); /* harmless after an error */
    cli_request_free(&req);
    cli_request_free(NULL);

    assert_int_equal(PARSE(&req, &err, "run", "--kernel", "k", "--initrd", "i", "--cmdline", "c",
                           "--console", "file:log"),
                     0);
    cli_request_free(&req);
    assert_null(req.config.kernel_path);
    assert_null(req.config.initrd_path);
    assert_null(req.config.cmdline);
    assert_null(req.config.console_path);
}

/* What main does: parse, then config_validate checks the files the flags name. */
static void test_parse_then_validate(void **state)
{
    char dir[] = "/tmp/kiln-test-cli-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char kernel[64];
    snprintf(kernel, sizeof(kernel), "%s/kernel.elf", dir);
    FILE *f = fopen(kernel, "w");
    assert_non_null(f);
    fputs("\x7f"
          "ELF",
          f);
    fclose(f);

    struct cli_request req;
    struct error err;
    assert_int_equal(PARSE(&req, &err, "run", "--kernel", kernel), 0);
    assert_int_equal(config_validate(&req.config, &err), 0);
    cli_request_free(&req);

    assert_int_equal(PARSE(&req, &err, "run", "--kernel", "x.elf"), 0);
    assert_int_equal(config_validate(&req.config, &err), -ENOENT);
    assert_string_equal(
        err.msg, "--kernel: 'x.elf': No such file or directory (expected a kernel image file)");
    cli_request_free(&req);

    assert_int_equal(PARSE(&req, &err, "run", "--kernel", kernel, "--initrd", dir), 0);
    assert_true(config_validate(&req.config, &err) < 0);
    char expected[160];
    snprintf(expected, sizeof(expected), "--initrd: '%s' is a directory (expected an initrd file)",
             dir);
    assert_string_equal(err.msg, expected);
    cli_request_free(&req);

    unlink(kernel);
    rmdir(dir);
}

/* cli_load, what main runs before a VM starts: every problem of the flags at once. */
static void test_load_reports_every_problem(void **state)
{
    struct cli_request req;
    struct error err;
    assert_int_equal(PARSE(&req, &err, "run", "--kernel", "/nonexistent/k", "--initrd",
                           "/nonexistent/i", "--disk", "/nonexistent/d.img"),
                     0);
    struct config_problems problems = {.count = 0};
    assert_int_equal(cli_load(&req, true, &problems), -ENOENT);
    assert_int_equal(problems.count, 3);
    assert_string_equal(problems.lines[0], "--kernel: '/nonexistent/k': No such file or directory "
                                           "(expected a kernel image file)");
    assert_string_equal(problems.lines[1], "--initrd: '/nonexistent/i': No such file or directory "
                                           "(expected an initrd file)");
    assert_string_equal(problems.lines[2],
                        "--disk: '/nonexistent/d.img': No such file or directory (expected a "
                        "raw disk image or block device)");
    config_problems_free(&problems);
    /* Without the file system (kiln config) none of them is a problem. */
    assert_int_equal(cli_load(&req, false, &problems), 0);
    assert_int_equal(config_problems_total(&problems), 0);
    cli_request_free(&req);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_each_flag_both_spellings),
        cmocka_unit_test(test_all_flags_together),
        cmocka_unit_test(test_good_values),
        cmocka_unit_test(test_cmdline_values),
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_help_text),
        cmocka_unit_test(test_command_errors),
        cmocka_unit_test(test_flag_errors),
        cmocka_unit_test(test_cpus_errors),
        cmocka_unit_test(test_memory_errors),
        cmocka_unit_test(test_console_and_log_errors),
        cmocka_unit_test(test_console_sinks_and_vconsole),
        cmocka_unit_test(test_platform_flags),
        cmocka_unit_test(test_virtio_console_flag),
        cmocka_unit_test(test_errors_stay_one_line),
        cmocka_unit_test(test_request_free),
        cmocka_unit_test(test_parse_then_validate),
        cmocka_unit_test(test_load_reports_every_problem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
